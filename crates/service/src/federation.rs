//! Workload identity federation: no long-lived secret in CI. An organization admin sets a trust
//! rule once (a federated credential: an issuer of `FEDERATION_ISSUERS`, the audience, and the
//! subject and/or claims a workload's token must carry, and the roles it gets); a workload then
//! exchanges the short-lived OIDC token its platform gives it (GitHub Actions, GitLab CI) for an
//! `assume` token of this service (RFC 8693), stored, listed and revocable like any other.
//!
//! The subject token must verify against its issuer's keys (found through discovery and cached as
//! trusted issuers' are), RS256 or ES256 as the key says, with `none` and HMAC refused before any
//! key is looked at; be unexpired, with `iat`
//! not in the future; carry the credential's audience; and match exactly one credential. Its `jti`
//! is remembered until its `exp`, in the database, so that a second use is refused on every
//! replica.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::issuers::TrustedIssuers;
use crate::keys::jws::{self, Rules};
use crate::keys::verify::MAX_TOKEN_BYTES;
use crate::store::types::{TextList, Timestamp};
use crate::store::{FederatedCredentialRow, Queries, Store, Tx};
use crate::tokens::id::random_id;
use crate::tokens::item::rfc3339;
use crate::tokens::{Authority, Caller, roles};
use access_tokens_jose::jwk::Algorithm;

/// `grant_type` of a token exchange (RFC 8693 section 2.1).
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The `subject_token_type`s taken, and the `issued_token_type` answered.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The issuers credentials may name when `FEDERATION_ISSUERS` is not set.
pub const DEFAULT_ISSUERS: [&str; 2] = [
    "https://token.actions.githubusercontent.com",
    "https://gitlab.com",
];
/// How long an exchanged token lives.
pub const EXCHANGED_LIFETIME_SECONDS: u64 = 3600;
/// Clock skew allowed on the workload token's `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 60;
/// An organization has at most this many credentials.
pub const MAX_CREDENTIALS: usize = 100;
const MAX_TEXT_CHARS: usize = 255;
const MAX_CLAIMS: usize = 20;
/// The prefix of `created_by` of an exchanged token: `federated:<credential id>`.
pub const PRINCIPAL_PREFIX: &str = "federated:";
/// The issuer under which an exchanged token's principal is keyed.
const PRINCIPAL_ISSUER: &str = "urn:access-tokens:federation";

/// What `POST /federated-credentials` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialBody {
    pub name: String,
    pub issuer: String,
    pub audience: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    #[serde(default)]
    pub assignments: Option<Vec<String>>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub anonymize: bool,
}

/// A federated credential as the API shows it.
#[derive(Debug, Serialize)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<Map<String, Value>>,
    pub assignments: Vec<String>,
    pub read_only: bool,
    pub anonymize: bool,
    pub created_by: String,
    pub created_at: String,
}

impl From<&FederatedCredentialRow> for Credential {
    fn from(row: &FederatedCredentialRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            issuer: row.issuer.clone(),
            audience: row.audience.clone(),
            subject: row.subject.clone(),
            claims: row
                .claims
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
            assignments: row.assignments.0.clone(),
            read_only: row.read_only,
            anonymize: row.anonymize,
            created_by: row.created_by.clone(),
            created_at: rfc3339(row.created_at.0),
        }
    }
}

fn require_admin(authority: &Authority, caller: &Caller, writes: bool) -> Result<()> {
    if !authority.is_admin(caller) {
        return Err(Error::forbidden(format!(
            "federated credentials are managed by the organization's admins: a role in organization {} with one of the slugs {} (TOKEN_ADMIN_ROLES)",
            caller.org_id,
            authority.admin_roles.join(", ")
        )));
    }
    if writes && caller.read_only {
        return Err(Error::forbidden(
            "a read-only token cannot change federated credentials",
        ));
    }
    Ok(())
}

fn text(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::bad_request(format!(
            "{field} must be 1 to {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(value.to_owned())
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("the organization has no federated credential {id}"))
}

/// Creates a credential (admins): its roles are ones the caller holds, never more.
pub async fn create(
    store: &Store,
    authority: &Authority,
    issuers: &[String],
    caller: &Caller,
    body: CreateCredentialBody,
) -> Result<Credential> {
    require_admin(authority, caller, true)?;
    let name = text("name", &body.name)?;
    let issuer = body.issuer.trim().to_owned();
    if !issuers.contains(&issuer) {
        return Err(Error::bad_request(format!(
            "issuer {:?} is not one FEDERATION_ISSUERS names ({}): name the issuer exactly as its tokens' iss, or ask the operator to add it",
            issuer.chars().take(MAX_TEXT_CHARS).collect::<String>(),
            issuers.join(", ")
        )));
    }
    let audience = text("audience", &body.audience)?;
    let subject = body
        .subject
        .as_deref()
        .map(|s| text("subject", s))
        .transpose()?;
    let claims = match body.claims {
        None => None,
        Some(map) if map.is_empty() => {
            return Err(Error::bad_request(
                "claims is empty: name at least one claim and its exact value, or leave it out and set subject",
            ));
        }
        Some(map) if map.len() > MAX_CLAIMS => {
            return Err(Error::bad_request(format!(
                "claims names {} claims; at most {MAX_CLAIMS}",
                map.len()
            )));
        }
        Some(map) => {
            for (claim, value) in &map {
                text("a claim name", claim)?;
                match value {
                    Value::String(v) if !v.is_empty() && v.chars().count() <= MAX_TEXT_CHARS => {}
                    _ => {
                        return Err(Error::bad_request(format!(
                            "claims.{claim} must be the exact string value the claim must have (1 to {MAX_TEXT_CHARS} characters)"
                        )));
                    }
                }
            }
            Some(Value::Object(map).to_string())
        }
    };
    if subject.is_none() && claims.is_none() {
        return Err(Error::bad_request(
            "name the workloads the credential trusts: subject (the exact sub, such as repo:acme/app:ref:refs/heads/main) and/or claims (such as {\"repository\": \"acme/app\"})",
        ));
    }
    let requested = body
        .assignments
        .as_deref()
        .map(roles::parse_requested)
        .transpose()?;
    let assignments = roles::grant(&caller.org_id, &caller.roles, requested)?;
    if caller.anonymize && !body.anonymize {
        return Err(Error::forbidden(
            "an anonymizing token cannot create a credential that does not anonymize",
        ));
    }
    let row = FederatedCredentialRow {
        id: random_id("fc"),
        org_id: caller.org_id.clone(),
        name,
        issuer,
        audience,
        subject,
        claims,
        assignments: TextList(assignments),
        read_only: body.read_only || caller.read_only,
        anonymize: body.anonymize,
        created_by: caller.user_id.clone(),
        created_at: Timestamp::now(),
    };
    let mut tx = store.begin().await?;
    let existing = tx
        .db()
        .federated_credentials(&caller.org_id, None, MAX_CREDENTIALS as i64)
        .await?;
    if existing.len() >= MAX_CREDENTIALS {
        return Err(Error::Conflict(format!(
            "the organization has {MAX_CREDENTIALS} federated credentials, the most it may have; delete one first"
        )));
    }
    tx.db().insert_federated_credential(&row).await?;
    audit(&mut tx, caller, "federated_credential_created", &row).await?;
    tx.commit().await?;
    Ok(Credential::from(&row))
}

async fn audit(
    tx: &mut Tx,
    caller: &Caller,
    action: &str,
    row: &FederatedCredentialRow,
) -> Result<()> {
    let credential = Credential::from(row);
    let details = json!({
        "id": credential.id,
        "name": credential.name,
        "issuer": credential.issuer,
        "audience": credential.audience,
        "subject": credential.subject,
        "claims": credential.claims,
    })
    .to_string();
    tx.db()
        .record_org_event(&caller.org_id, action, &details, &caller.actor())
        .await?;
    Ok(())
}

/// A page of the organization's credentials, newest first (admins).
pub async fn list(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    after: Option<(Timestamp, &str)>,
    limit: i64,
) -> Result<Vec<FederatedCredentialRow>> {
    require_admin(authority, caller, false)?;
    let mut conn = store.acquire().await?;
    Ok(conn
        .db()
        .federated_credentials(&caller.org_id, after, limit)
        .await?)
}

pub async fn get(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    id: &str,
) -> Result<Credential> {
    require_admin(authority, caller, false)?;
    let mut conn = store.acquire().await?;
    conn.db()
        .federated_credential(&caller.org_id, id)
        .await?
        .map(|row| Credential::from(&row))
        .ok_or_else(|| not_found(id))
}

/// Deletes a credential and revokes its live tokens and every token made from them, in one
/// transaction; answers the tokens revoked.
pub async fn delete(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    id: &str,
) -> Result<Vec<crate::tokens::TokenRecord>> {
    require_admin(authority, caller, true)?;
    let mut tx = store.begin().await?;
    let row = tx
        .db()
        .federated_credential(&caller.org_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !tx
        .db()
        .delete_federated_credential(&caller.org_id, id)
        .await?
    {
        return Err(not_found(id));
    }
    audit(&mut tx, caller, "federated_credential_deleted", &row).await?;
    let details = json!({ "reason": "credential_deleted", "credential": id }).to_string();
    let revoked = crate::offboard::revoke_created_by(
        &mut tx,
        &caller.org_id,
        &format!("{PRINCIPAL_PREFIX}{id}"),
        &caller.actor(),
        None,
        &details,
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// A failed exchange: the RFC 6749 section 5.2 error code and what failed (never the token).
#[derive(Debug)]
pub struct Refused {
    pub error: &'static str,
    pub description: String,
}

impl Refused {
    fn invalid(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_request",
            description: description.into(),
        }
    }
}

/// What an exchange request holds (its form parameters).
#[derive(Debug, Default)]
pub struct ExchangeRequest {
    pub grant_type: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub organization: Option<String>,
}

/// The checks of an exchange up to the credential it matches: the verified claims, and the one
/// credential.
pub async fn match_credential(
    store: &Store,
    federation: &TrustedIssuers,
    request: &ExchangeRequest,
) -> Result<std::result::Result<(Map<String, Value>, FederatedCredentialRow), Refused>> {
    use std::result::Result::{Err as No, Ok as Yes};
    match request.grant_type.as_deref() {
        Some(TOKEN_EXCHANGE) => {}
        Some(_) => {
            return Ok(No(Refused {
                error: "unsupported_grant_type",
                description: format!("grant_type must be {TOKEN_EXCHANGE}"),
            }));
        }
        None => return Ok(No(Refused::invalid("grant_type is missing"))),
    }
    match request.subject_token_type.as_deref() {
        Some(JWT_TYPE | ID_TOKEN_TYPE) => {}
        _ => {
            return Ok(No(Refused::invalid(format!(
                "subject_token_type must be {JWT_TYPE} or {ID_TOKEN_TYPE}"
            ))));
        }
    }
    let Some(token) = request.subject_token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(No(Refused::invalid("subject_token is missing")));
    };
    if token.len() > MAX_TOKEN_BYTES {
        return Ok(No(Refused::invalid("subject_token is larger than 8 KiB")));
    }
    let Some(iss) = jws::unverified_issuer(token) else {
        return Ok(No(Refused::invalid(
            "subject_token is not a JWT with an iss claim",
        )));
    };
    if !federation.is_trusted(&iss) {
        return Ok(No(Refused::invalid(
            "subject_token's issuer is not one FEDERATION_ISSUERS names",
        )));
    }
    // The header parse refuses `none`, HMAC and every algorithm but RS256 and ES256, before any
    // key; the key found must then be of the header's algorithm.
    let jws = match jws::parse_allowing(token, &[Algorithm::Rs256, Algorithm::Es256]) {
        Yes(jws) => jws,
        No(access_tokens_jose::Error::Algorithm(_)) => {
            return Ok(No(Refused::invalid(
                "subject_token's algorithm is not RS256 or ES256",
            )));
        }
        No(e) => {
            return Ok(No(Refused::invalid(format!(
                "subject_token is refused: {}",
                e.detail()
            ))));
        }
    };
    let Yes(kid) = jws.kid() else {
        return Ok(No(Refused::invalid("subject_token's header has no kid")));
    };
    let Some(key) = federation.key(&iss, kid).await else {
        return Ok(No(Refused::invalid(
            "subject_token is signed by a key its issuer does not publish",
        )));
    };
    let rules = Rules {
        issuer: &iss,
        require_exp: true,
        require_sub: true,
        check_nbf: true,
        leeway: LEEWAY_SECONDS,
    };
    let now = jws::now();
    let claims = match jws.verify_with(&key, &rules, now) {
        Yes(claims) => claims,
        No(access_tokens_jose::Error::Algorithm(_)) => {
            return Ok(No(Refused::invalid(
                "subject_token's algorithm is not the one of its issuer's key",
            )));
        }
        No(e) => {
            return Ok(No(Refused::invalid(format!(
                "subject_token is refused: {}",
                e.detail()
            ))));
        }
    };
    match claims.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= now + LEEWAY_SECONDS => {}
        Some(_) => {
            return Ok(No(Refused::invalid(
                "subject_token was issued in the future (iat)",
            )));
        }
        None => return Ok(No(Refused::invalid("subject_token has no iat"))),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut conn = store.acquire().await?;
    let of_issuer = conn.db().credentials_of_issuer(&iss).await?;
    drop(conn);
    let for_audience: Vec<&FederatedCredentialRow> = of_issuer
        .iter()
        .filter(|c| audiences.contains(&c.audience.as_str()))
        .filter(|c| {
            request
                .organization
                .as_deref()
                .is_none_or(|org| org == c.org_id)
        })
        .collect();
    if for_audience.is_empty() {
        return Ok(No(Refused::invalid(
            "no federated credential of the token's issuer accepts its aud (or the organization named)",
        )));
    }
    let matching: Vec<&FederatedCredentialRow> = for_audience
        .into_iter()
        .filter(|c| matches(c, &claims))
        .collect();
    match matching.as_slice() {
        [] => Ok(No(Refused::invalid(
            "no federated credential of the token's issuer and aud matches its sub and claims",
        ))),
        [one] => Ok(Yes((claims, (*one).clone()))),
        [first, rest @ ..] if rest.iter().any(|c| c.org_id != first.org_id) => {
            Ok(No(Refused::invalid(
                "the token matches federated credentials of several organizations: name one with the organization parameter",
            )))
        }
        _ => Ok(No(Refused::invalid(
            "the token matches several federated credentials of the organization: make their subject or claims narrower",
        ))),
    }
}

/// Whether `claims` carry the credential's subject and every one of its claims, exactly.
fn matches(credential: &FederatedCredentialRow, claims: &Map<String, Value>) -> bool {
    if let Some(subject) = &credential.subject
        && claims.get("sub").and_then(Value::as_str) != Some(subject.as_str())
    {
        return false;
    }
    let Some(required) = &credential.claims else {
        return true;
    };
    let Ok(required) = serde_json::from_str::<Map<String, Value>>(required) else {
        return false;
    };
    required
        .iter()
        .all(|(name, value)| claims.get(name) == Some(value))
}

/// The caller an exchanged token is created for: the credential, in its organization, with its
/// roles and flags.
pub fn credential_caller(credential: &FederatedCredentialRow) -> Caller {
    Caller {
        read_only: credential.read_only,
        anonymize: credential.anonymize,
        ..Caller::user(
            PRINCIPAL_ISSUER,
            credential.org_id.clone(),
            format!("{PRINCIPAL_PREFIX}{}", credential.id),
            credential.assignments.0.clone(),
        )
    }
}

/// Remembers the workload token's `jti` until its `exp`: `false` when it was exchanged before.
/// Expired ones are forgotten on the way.
pub async fn remember(store: &Store, iss: &str, claims: &Map<String, Value>) -> Result<bool> {
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
        .unwrap_or_else(chrono::Utc::now);
    let mut tx = store.begin().await?;
    tx.db().forget_expired_jtis(Timestamp::now()).await?;
    let fresh = tx.db().remember_jti(iss, jti, Timestamp(exp)).await?;
    tx.commit().await?;
    Ok(fresh)
}
