//! Who calls: the bearer JWT verified, and the caller it establishes.
//!
//! A caller presents an RS256 JWT signed by a trusted issuer (keys from its JWKS) or an
//! unexpired, unrevoked `api`/`app`/`assume` token of this service's own `api` key set. Everything
//! else is refused: `Error::NoBearerToken` when no token was sent, else `Error::InvalidToken` with
//! a short fixed reason (RFC 6750 section 3), the same in the body and at info in the log. The
//! algorithm is pinned to RS256 before any key is looked at; the only unverified read of a token
//! is `jws::unverified_issuer`, used to pick the key. Own tokens are verified by
//! `keys::verify::verify_own` (shared with introspection) and marked as used.

use serde_json::{Map, Value};

use crate::Service;
use crate::error::{Error, Result};
use crate::issuers::Mapping;
use crate::keys::KeySetName;
use crate::keys::VerifyingKey;
use crate::keys::jws::{self, Compact, Rules, unverified_issuer};
use crate::keys::verify::{MAX_TOKEN_BYTES, verify_own};
use crate::metrics::AuthFailure;
use crate::tokens::claims::OwnTokenClaims;
use crate::tokens::{Caller, Refused, RolesClaim, legacy_owner_key};

/// Clock skew tolerated on a trusted issuer's `exp` and `nbf`, in seconds: its clock and ours drift
/// a little, and a minute is the usual allowance. Our own tokens get none (our clock issued them).
const ISSUER_LEEWAY_SECONDS: u64 = 60;

impl Service {
    /// The caller a bearer token establishes (`token`: the credentials of `Authorization: Bearer`,
    /// `None` when none was sent), from the peer at `address`. An address that failed too often
    /// is turned away before any signature is checked; each refusal is logged (the reason, never
    /// the token), counted in the metrics and against the address.
    pub async fn authenticate(&self, token: Option<&str>, address: Option<&str>) -> Result<Caller> {
        if let Some(ip) = address
            && let Err(limited) = self.rate_limits.check_address(ip)
        {
            self.metrics.auth_failure(AuthFailure::RateLimited);
            return Err(limited);
        }
        let refused = |error: Error, detail: &'static str| {
            // The issuer the token names, unverified and cut short: which identity provider's
            // callers are being turned away (never the token itself).
            let iss = token.and_then(unverified_issuer).map(|iss| {
                iss.chars()
                    .take(MAX_LOGGED_ISSUER_CHARS)
                    .collect::<String>()
            });
            tracing::info!(reason = %error, detail, iss, "caller refused");
            self.metrics.auth_failure(explain(detail).1);
            if let Some(ip) = address {
                self.rate_limits.failed_authentication(ip);
            }
            error
        };
        let Some(token) = token else {
            return Err(refused(Error::NoBearerToken, "no bearer token"));
        };
        let mut caller = match caller_of(self, token).await {
            Ok(caller) => caller,
            Err(Refusal::Unauthorized(detail)) => {
                return Err(refused(Error::InvalidToken(explain(detail).0), detail));
            }
            Err(Refusal::Other(error)) => {
                if let Error::Forbidden(why) = &error {
                    let iss = unverified_issuer(token).map(|iss| {
                        iss.chars()
                            .take(MAX_LOGGED_ISSUER_CHARS)
                            .collect::<String>()
                    });
                    tracing::info!(reason = %why, iss, "caller forbidden");
                }
                return Err(error);
            }
        };
        caller.source_ip = address.map(str::to_owned);
        Ok(caller)
    }
}

/// An issuer longer than this is cut in the log: `iss` is read before any signature is checked.
const MAX_LOGGED_ISSUER_CHARS: usize = 256;

/// 403 when an identity provider's caller holds no role in the organization it acts in (after
/// `x-epilot-org-id`), naming the issuer and the claim that was read: such a caller could only
/// make tokens without roles, and nothing would say why.
pub fn require_roles(caller: &Caller) -> Result<(), Error> {
    let Some(read) = &caller.roles_claim else {
        return Ok(());
    };
    let prefix = format!("{}:", caller.org_id);
    if caller.roles.iter().any(|role| role.starts_with(&prefix)) {
        return Ok(());
    }
    let (issuer, claim) = (&read.issuer, &read.claim);
    let why = if caller.roles.is_empty() {
        format!("the token of {issuer} carries no roles at {claim}")
    } else {
        format!(
            "the token of {issuer} carries no roles of organization {} at {claim}",
            caller.org_id
        )
    };
    tracing::info!(reason = %why, iss = %issuer, "caller forbidden");
    Err(Error::forbidden(format!(
        "{why}: give the user a role there, or map the claim that holds its roles"
    )))
}

/// The header with which a caller acts in another organization, as the platform's API takes it.
pub const ORG_HEADER: &str = "x-epilot-org-id";

/// `x-epilot-org-id: X`: a caller holding roles of organization X (`X:<slug>`) acts in X, with its
/// X roles only; holding none there, 403. The caller's own organization stays on record (its
/// audit events name both). Absent, empty or the caller's own organization: nothing changes.
/// Sent twice, it names no one organization: 400 (a proxy that appends its own copy must not
/// decide which one counts).
pub fn act_in_requested_organization<'a>(
    caller: &mut Caller,
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), Error> {
    let mut values = values.into_iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(Error::bad_request(format!(
            "{ORG_HEADER} is sent more than once: send it once, naming one organization"
        )));
    }
    // Bytes that are not UTF-8 name no organization any role id can be of.
    let org = std::str::from_utf8(value).unwrap_or("\u{fffd}").trim();
    if org.is_empty() || org == caller.org_id {
        return Ok(());
    }
    let in_org = |role: &String| role.split_once(':').is_some_and(|(o, _)| o == org);
    if !caller.roles.iter().any(in_org) {
        let shown: String = org.chars().take(64).collect();
        return Err(Error::forbidden(format!(
            "{ORG_HEADER} names organization {shown:?}, in which the caller holds no role"
        )));
    }
    caller.roles.retain(in_org);
    caller.act_in(org.to_owned());
    Ok(())
}

/// What a refusal tells, from the checks' own words (`detail`, which go to the log beside it): the
/// client's reason, a few words from a fixed list, so that nothing read from the token, no key
/// material and nothing about other organizations' tokens reaches it; and the metrics' reason, one
/// of a few fixed labels.
fn explain(detail: &'static str) -> (&'static str, AuthFailure) {
    use AuthFailure::*;
    match detail {
        "no bearer token" => ("no bearer token", NoToken),
        "token too large" => ("the token is larger than 8 KiB", Malformed),
        "expired" => ("the token has expired", Expired),
        "not yet valid" => ("the token is not valid yet (nbf)", Expired),
        "token revoked" => ("the token has been revoked", Revoked),
        "token suspended" => ("the token is suspended", Suspended),
        "untrusted issuer" | "iss is not the expected issuer" => {
            ("untrusted issuer", UntrustedIssuer)
        }
        "kid not published"
        | "unknown kid of trusted issuer"
        | "own key under a trusted issuer" => ("unknown signing key (kid)", UnknownKey),
        "signature invalid" => ("the signature does not verify", BadSignature),
        "algorithm is not RS256" => ("the token's algorithm is not RS256", Malformed),
        "no exp" => ("the token has no exp claim", Malformed),
        "token_use not accepted" | "no token_use" => {
            ("the token's token_use is not accepted", NotAccepted)
        }
        "audience not accepted" => (
            "the token's app client (aud or client_id) is not accepted",
            NotAccepted,
        ),
        "not of the api key set" | "token type cannot call the API" => (
            "this token type cannot call the management API",
            NotAccepted,
        ),
        // No issuer, not a compact JWS, a header or claims that do not parse, no kid, no sub.
        _ => ("malformed token", Malformed),
    }
}

enum Refusal {
    /// Why, in the checks' words: logged, and turned into the client's reason by `explain`.
    Unauthorized(&'static str),
    Other(Error),
}

/// A JWS refused by the JOSE crate: its fixed phrase is the detail.
impl From<access_tokens_jose::Error> for Refusal {
    fn from(error: access_tokens_jose::Error) -> Self {
        Refusal::Unauthorized(error.detail())
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Other(error)
    }
}

async fn caller_of(service: &Service, token: &str) -> Result<Caller, Refusal> {
    use Refusal::Unauthorized as No;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(No("token too large"));
    }
    let iss = unverified_issuer(token).ok_or(No("no issuer"))?;

    let keys = service.keys.current();
    if iss == keys.set(KeySetName::Api).issuer {
        // A token verified before against these keys is not verified again (`keys::verified`).
        let now = i64::try_from(jws::now()).unwrap_or(i64::MAX);
        if let Some(claims) = service.verified.get(&keys, token, now) {
            return own_caller(service, &claims).await;
        }
        // `verify_own` parses the header itself, with the algorithm pinned to RS256.
        let own = verify_own(&keys, token).map_err(No)?;
        if own.set != KeySetName::Api {
            return Err(No("not of the api key set"));
        }
        let claims: OwnTokenClaims = serde_json::from_value(Value::Object(own.claims))
            .map_err(|_| No("claims of own token incomplete"))?;
        let claims = std::sync::Arc::new(claims);
        let caller = own_caller(service, &claims).await?;
        service.verified.insert(&keys, token, claims);
        return Ok(caller);
    }
    let Some(mapping) = service.issuers.mapping(&iss) else {
        return Err(No("untrusted issuer"));
    };
    // The header parse refuses `none` and unknown algorithms; anything but RS256 stops here,
    // before any key of the issuer is looked up.
    let jws = jws::parse(token)?;
    let kid = jws.kid()?;
    // A key of this service's own sets under a trusted issuer's name: an issuer that republishes
    // this service's JWKS (such as its own URL by another host name) must not turn its public or
    // contact-identification tokens into callers.
    if keys.set_of_kid(kid).is_some() {
        return Err(No("own key under a trusted issuer"));
    }
    let key = service
        .issuers
        .key(&iss, kid)
        .await
        .ok_or(No("unknown kid of trusted issuer"))?;
    let claims = verify_issuer_token(&jws, &key, &iss)?;
    mapping.admits(&claims).map_err(No)?;
    issuer_caller(&iss, &claims, mapping)
}

/// Verifies a trusted issuer's token: signature, algorithm, issuer, and an `exp` that must be there.
/// `token_use` and the client are the issuer's mapping's to check.
fn verify_issuer_token(
    jws: &Compact<'_>,
    key: &VerifyingKey,
    iss: &str,
) -> Result<Map<String, Value>, Refusal> {
    let rules = Rules {
        issuer: iss,
        require_exp: true,
        require_sub: false,
        check_nbf: true,
        leeway: ISSUER_LEEWAY_SECONDS,
    };
    Ok(jws.verify_with(key, &rules, jws::now())?)
}

async fn own_caller(service: &Service, claims: &OwnTokenClaims) -> Result<Caller, Refusal> {
    if claims.token_use != "access"
        || !matches!(claims.token_type.as_str(), "api" | "app" | "assume")
    {
        return Err(Refusal::Unauthorized("token type cannot call the API"));
    }
    // Revocations come from the in-memory set that follows PostgreSQL (see `revocations`).
    match service
        .revocations
        .refusal(&claims.org_id, &claims.token_id)
        .await?
    {
        Some(Refused::Revoked) => return Err(Refusal::Unauthorized("token revoked")),
        Some(Refused::Suspended) => return Err(Refusal::Unauthorized("token suspended")),
        None => {}
    }
    service.usage.mark(&claims.token_id);
    // A token acts for the principal that owns it; one issued before principals names its user
    // and organization only, as its row's legacy key does.
    let legacy_owner = legacy_owner_key(&claims.org_id, &claims.user_id);
    Ok(Caller {
        owner: claims.owner.clone().unwrap_or_else(|| legacy_owner.clone()),
        legacy_owner,
        org_id: claims.org_id.clone(),
        user_id: claims.user_id.clone(),
        roles: claims.assignments.clone(),
        username: claims.username.clone(),
        email: claims.email.clone(),
        read_only: claims.read_only,
        anonymize: claims.anonymize,
        token_id: Some(claims.token_id.clone()),
        expires_at: claims
            .exp
            .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0)),
        home_org_id: None,
        source_ip: None,
        user_agent: None,
        roles_claim: None,
    })
}

/// A trusted issuer's caller, read by its mapping: the organization, the user and the roles. The
/// `email` is the caller's only when `email_verified` is `true` (Cognito writes it as a boolean,
/// custom pipelines sometimes as the string `"true"`): an address not marked verified (`false`,
/// absent, `0`, `"no"`, `null`) names no one and is not copied into the tokens the caller creates.
/// A token naming no organization is a 403 that names the claim looked for.
fn issuer_caller(
    issuer: &str,
    claims: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Caller, Refusal> {
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let org_id = mapping.organization(claims).map_err(|claim| {
        Error::forbidden(format!(
            "the token of {issuer} carries no organization at {claim}: map the claim that names it, or a fixed organization"
        ))
    })?;
    let user_id = mapping
        .user(claims)
        .ok_or(Refusal::Unauthorized("no user"))?;
    let roles = mapping.roles(claims, &org_id);
    Ok(Caller {
        username: text("cognito:username").or_else(|| text("preferred_username")),
        email: text("email").filter(|_| email_verified(claims)),
        roles_claim: Some(RolesClaim {
            issuer: issuer.to_owned(),
            claim: mapping.roles_claim.clone(),
        }),
        ..Caller::user(issuer, org_id, user_id, roles)
    })
}

fn email_verified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn cognito() -> Mapping {
        Mapping::cognito(vec![], vec![], "assignments".into())
    }

    #[test]
    fn organization_and_user_come_from_the_ivy_claims_first() {
        let c = issuer_caller(
            "https://i.example",
            &claims(json!({"custom:ivy_org_id": "1", "org_id": "2", "custom:ivy_user_id": "u", "sub": "s", "assignments": ["1:owner"]})),
            &cognito(),
        )
        .ok()
        .unwrap();
        assert_eq!((c.org_id.as_str(), c.user_id.as_str()), ("1", "u"));
        assert_eq!(c.roles, ["1:owner"]);
        let c = issuer_caller(
            "https://i.example",
            &claims(json!({"org_id": 42, "sub": "s"})),
            &cognito(),
        )
        .ok()
        .unwrap();
        assert_eq!((c.org_id.as_str(), c.user_id.as_str()), ("42", "s"));
        assert!(c.roles.is_empty());
    }

    #[test]
    fn a_caller_without_organization_is_forbidden() {
        let refusal = issuer_caller(
            "https://i.example",
            &claims(json!({"sub": "s"})),
            &cognito(),
        )
        .err()
        .unwrap();
        assert!(matches!(refusal, Refusal::Other(Error::Forbidden(_))));
    }

    #[test]
    fn an_email_marked_unverified_is_not_the_callers() {
        let email = |extra: Value| {
            let mut c = claims(json!({"org_id": "1", "sub": "s", "email": "a@example.com"}));
            c.extend(claims(extra));
            issuer_caller("https://i.example", &c, &cognito())
                .ok()
                .unwrap()
                .email
        };
        for verified in [
            json!({"email_verified": true}),
            json!({"email_verified": "true"}),
            json!({"email_verified": "TRUE"}),
        ] {
            assert_eq!(email(verified).as_deref(), Some("a@example.com"));
        }
        for unverified in [
            json!({}),
            json!({"email_verified": false}),
            json!({"email_verified": "false"}),
            json!({"email_verified": 0}),
            json!({"email_verified": 1}),
            json!({"email_verified": "0"}),
            json!({"email_verified": "no"}),
            json!({"email_verified": null}),
            json!({"email_verified": [true]}),
        ] {
            assert_eq!(email(unverified.clone()), None, "{unverified}");
        }
    }

    #[test]
    fn reasons_are_fixed_phrases_an_error_description_may_hold_and_fixed_metric_labels() {
        use AuthFailure::*;
        for (detail, failure) in [
            ("no bearer token", NoToken),
            ("token too large", Malformed),
            ("expired", Expired),
            ("not yet valid", Expired),
            ("token revoked", Revoked),
            ("token suspended", Suspended),
            ("untrusted issuer", UntrustedIssuer),
            ("kid not published", UnknownKey),
            ("signature invalid", BadSignature),
            ("algorithm is not RS256", Malformed),
            ("no exp", Malformed),
            ("no token_use", NotAccepted),
            ("audience not accepted", NotAccepted),
            ("token type cannot call the API", NotAccepted),
            ("no kid", Malformed),
            ("something new", Malformed),
        ] {
            let (reason, counted) = explain(detail);
            // RFC 6750 section 3: %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                reason
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
                "{reason}"
            );
            assert_eq!(counted, failure, "{detail}");
        }
        assert_eq!(explain("no kid").0, "malformed token");
        assert_eq!(explain("something new").0, "malformed token");
    }
}
