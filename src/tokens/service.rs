//! The create, list and revoke rules, calling the store and the key ring.

use chrono::{Duration, Utc};
use sqlx::PgPool;

use super::claims::Claims;
use super::request::NewToken;
use super::{Caller, TokenId, TokenRecord, TokenType, roles};
use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::store;

/// A new token: the JWT (shown once) and its record.
pub struct Created {
    pub jwt: String,
    pub record: TokenRecord,
}

fn refuse_read_only(caller: &Caller) -> Result<()> {
    if caller.read_only {
        return Err(Error::forbidden(
            "a read-only token cannot create or revoke tokens",
        ));
    }
    Ok(())
}

/// Creates a token for the caller's organization. The JWT is returned only after its record is
/// committed, so a JWT that exists always has a row.
pub async fn create(
    pool: &PgPool,
    keys: &KeyRing,
    caller: &Caller,
    new: NewToken,
) -> Result<Created> {
    refuse_read_only(caller)?;
    let token_type = new.token_type;
    let (assignments, read_only, anonymize) = if token_type.carries_roles() {
        let assignments = roles::grant(&caller.org_id, &caller.roles, new.requested_roles)?;
        // A token never sees more than its creator: an anonymizing caller makes anonymizing tokens.
        let anonymize = new.anonymize.unwrap_or(caller.anonymize);
        if caller.anonymize && !anonymize {
            return Err(Error::forbidden(
                "an anonymizing token cannot create a token that does not anonymize",
            ));
        }
        (assignments, new.read_only.unwrap_or(false), anonymize)
    } else {
        (Vec::new(), false, false)
    };

    let key_set = keys.set(token_type.key_set());
    let now = Utc::now();
    let expires_at = match new.lifetime {
        Some(seconds) => Some(
            now + Duration::seconds(
                i64::try_from(seconds)
                    .map_err(|_| Error::bad_request("expires_in is too large"))?,
            ),
        ),
        None => None,
    };
    let record = TokenRecord {
        id: TokenId::generate(token_type).to_string(),
        org_id: caller.org_id.clone(),
        created_by: caller.user_id.clone(),
        token_type,
        name: new.name,
        assignments,
        read_only,
        anonymize,
        fields: new.fields,
        key_id: key_set.signing.kid().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used: None,
    };
    let jwt = key_set
        .signing
        .sign(&Claims::new(&key_set.issuer, &record, caller))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let record = if token_type.is_stored() {
        let mut conn = pool.acquire().await?;
        store::tokens::insert(&mut conn, &record).await?
    } else {
        record
    };
    Ok(Created { jwt, record })
}

/// The caller's organization's unrevoked tokens, newest first.
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    types: Option<&[TokenType]>,
) -> Result<Vec<TokenRecord>> {
    let names: Option<Vec<&str>> = types.map(|ts| ts.iter().map(|t| t.as_str()).collect());
    let mut conn = pool.acquire().await?;
    Ok(store::tokens::list(&mut conn, &caller.org_id, names.as_deref()).await?)
}

/// Revokes one of the caller's organization's tokens; another organization's id is a 404.
pub async fn revoke(pool: &PgPool, caller: &Caller, id: &str) -> Result<TokenRecord> {
    refuse_read_only(caller)?;
    let not_found = || Error::NotFound("access token not found".to_owned());
    if TokenId::parse(id).is_none() {
        return Err(not_found());
    }
    let mut conn = pool.acquire().await?;
    store::tokens::revoke(&mut conn, &caller.org_id, id)
        .await?
        .ok_or_else(not_found)
}
