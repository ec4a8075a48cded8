//! The use cases of `access-tokens`, below its HTTP layer: who calls (`Service::authenticate`),
//! what a token is worth (`Service::introspect`), issuance and the lifecycle (create, rotate,
//! revoke, suspend, resume), the organization policy and the audit trail; with the key ring
//! (`keys`), the trusted issuers (`issuers`), the rate limits, the metrics and the typed settings
//! they need.
//!
//! Its surface is [`Service`]: private fields, and one method per use case. Below it, crates of
//! the workspace that Cargo keeps from naming anything above them (docs/architecture.md): the
//! store (`store`, both databases), the domain (`tokens`) and the JOSE crate. This crate knows no
//! HTTP server: the binary's handlers extract, call a method of `Service` and render, and map
//! this crate's `Error` to statuses in one place.

pub mod authenticate;
pub mod config;
pub mod error;
pub mod federation;
pub mod introspect;
pub mod issuers;
pub mod keys;
pub mod leaks;
pub mod lifecycle;
pub mod metrics;
pub mod offboard;
pub mod policy;
pub mod rate_limit;
pub mod revocations;
pub mod secret_scanning;
pub mod status_lists;
pub mod ui_sign_in;
pub mod usage;
pub mod webhooks;
/// The domain is its own crate; named `tokens` here, the floor it was.
pub use access_tokens_domain as tokens;
/// The store is its own crate; named `store` here, the floor it was.
pub use access_tokens_store as store;

pub use error::{Error, Result};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{HttpSettings, Settings};
use crate::issuers::TrustedIssuers;
use crate::keys::{KeyRing, KeySetName, Keys};
pub use crate::lifecycle::{Created, ListParams, Revoked, Rotation};
use crate::metrics::{KeyGauges, Metrics, StateSource};
use crate::policy::Policies;
use crate::rate_limit::RateLimits;
use crate::revocations::Revocations;
use crate::status_lists::{SetLists, StatusLists};
/// What the audit trail answers: one event, as stored.
pub use crate::store::{AuditEvent, Identified};
use crate::store::{Change as StoreChange, EventQuery, Queries, Store};
use crate::tokens::policy::PolicyBody;
use crate::tokens::request::{CreateTokenBody, NewToken};
use crate::tokens::{Caller, Policy, Refused, TokenRecord, TokenType};
use crate::usage::UsageTracker;
use crate::webhooks::{CreateWebhookBody, Delivery, Endpoint, Webhooks, WithSecret};

/// A change this replica committed, as the fan-out ([`Service::apply`]) takes it: one name for
/// "a change happened", whatever the use case.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A token was created (its row and `created` event committed).
    Created(&'a TokenRecord),
    /// These tokens were revoked: one, or one and its descendants (a cascade).
    Revoked(&'a [&'a str]),
    /// A token was rotated: the new record, naming the revoked one in `rotated_from`.
    /// The new token, and whether the old one was revoked at once (else it retires later).
    Rotated(&'a TokenRecord, bool),
    /// These tokens were suspended: one, and the tokens below it.
    Suspended(&'a [&'a str]),
    /// These tokens were resumed: one, and the tokens below it suspended with it.
    Resumed(&'a [&'a str]),
    /// The organization's policy changed.
    PolicyChanged,
}

/// Everything a replica holds: settings, store, keys, trusted issuers, the revocation set, usage
/// marks and rate limits. One per process, shared by every request.
pub struct Service {
    settings: Arc<Settings>,
    store: Store,
    keys: Arc<KeyRing>,
    issuers: Arc<TrustedIssuers>,
    /// The keys of `FEDERATION_ISSUERS`, whose workload tokens are exchanged.
    federation: TrustedIssuers,
    /// The settings page's OpenID Connect sign-in, when `UI_OIDC_ISSUER` is set.
    ui_sign_in: Option<ui_sign_in::UiSignIn>,
    usage: Arc<UsageTracker>,
    /// Own caller tokens already verified against the current keys (see `keys::verified`).
    verified: keys::verified::VerifiedOwnTokens,
    revocations: Arc<Revocations>,
    /// The key sets' status lists, as served.
    status_lists: Arc<StatusLists>,
    /// The organizations' policies as this replica last read or wrote them, with their versions.
    policies: Policies,
    rate_limits: RateLimits,
    /// Set once the replica is told to stop: its readiness check fails from then on.
    stopping: AtomicBool,
    /// What this replica counts, and the gauges read from its keys and pool at each scrape.
    metrics: Arc<Metrics>,
    /// The organizations' webhook endpoints, and the work that delivers to them.
    webhooks: Arc<Webhooks>,
    /// GitHub's secret scanning keys, when its alerts are received.
    github: Option<secret_scanning::GithubKeys>,
}

impl Service {
    pub fn new(settings: Settings, store: Store, keys: KeyRing, metrics: Arc<Metrics>) -> Self {
        let keys = Arc::new(keys);
        metrics.register(Arc::new(Gauges {
            keys: keys.clone(),
            store: store.clone(),
        }));
        let webhooks = Arc::new(Webhooks::new(
            store.clone(),
            settings.key_encryption_key.clone(),
            settings.webhooks.clone(),
            settings.intervals,
            keys.public_url(),
            metrics.webhooks.clone(),
        ));
        Self {
            webhooks,
            github: settings
                .secret_scanning_github
                .clone()
                .map(secret_scanning::GithubKeys::new),
            issuers: Arc::new(TrustedIssuers::counted(
                &settings.issuer_specs(),
                settings.issuer_policy.keys,
                settings.allow_insecure_issuers,
                |issuer| metrics.issuer_fetches(issuer),
            )),
            federation: TrustedIssuers::new(
                &settings
                    .federation_issuers
                    .iter()
                    .map(|url| issuers::IssuerSpec {
                        url: url.clone(),
                        // Read by the exchange's own rules; the mapping is never used.
                        mapping: issuers::Mapping::cognito(Vec::new(), Vec::new(), String::new()),
                    })
                    .collect::<Vec<_>>(),
                settings.issuer_policy.keys,
                settings.allow_insecure_issuers,
            ),
            ui_sign_in: settings
                .ui_oidc
                .clone()
                .map(|oidc| ui_sign_in::UiSignIn::new(oidc, keys.public_url())),
            rate_limits: RateLimits::new(settings.rate_limits),
            status_lists: Arc::new(StatusLists::new(
                store.clone(),
                keys.clone(),
                settings.status_list_ttl,
                metrics.status_lists.clone(),
            )),
            settings: Arc::new(settings),
            keys,
            usage: Arc::new(UsageTracker::default()),
            verified: Default::default(),
            revocations: Arc::new(Revocations::new(store.clone(), metrics.revocations.clone())),
            store,
            stopping: AtomicBool::new(false),
            policies: Policies::default(),
            metrics,
        }
    }

    /// The replica is stopping: readiness answers 503 from now on, while requests are still
    /// served (`SHUTDOWN_DRAIN`), so that a load balancer takes it out first.
    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The URL issuers and `jwks_uri`s derive from.
    pub fn public_url(&self) -> &str {
        self.keys.public_url()
    }

    /// How the HTTP layer listens, answers and stops.
    pub fn http_settings(&self) -> &HttpSettings {
        &self.settings.http
    }

    /// The key sets as loaded now: their JWKS and discovery documents, rendered once per key
    /// change.
    pub fn key_sets(&self) -> Arc<Keys> {
        self.keys.current()
    }

    /// A key set's status lists as served now; `None` until they are first rendered.
    pub fn status_lists(&self, set: KeySetName) -> Option<Arc<SetLists>> {
        self.status_lists.set(set)
    }

    /// `Cache-Control` of every status list (`max-age` = `STATUS_LIST_TTL`).
    pub fn status_list_cache_control(&self) -> &http::HeaderValue {
        self.status_lists.cache_control()
    }

    /// Reads every status list and renders it: at start-up, so that lists are served from the
    /// first request on.
    pub async fn render_status_lists(&self) -> Result<()> {
        self.status_lists.refresh(true).await
    }

    /// What this replica counts, for the HTTP layer's request counters and the metrics listener.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Creates a token for the caller: counted against the creation limits first, then parsed
    /// and decided by the domain's rules.
    pub async fn create_token(&self, caller: &Caller, body: CreateTokenBody) -> Result<Created> {
        self.rate_limits.create(caller)?;
        let new = NewToken::parse(body)?;
        let created = lifecycle::create(
            &self.store,
            &self.policies,
            &self.keys,
            &self.settings.webhooks.expiry_warnings,
            &self.settings.authority,
            caller,
            new,
        )
        .await?;
        self.apply(&Change::Created(&created.record));
        Ok(created)
    }

    pub async fn get_token(&self, caller: &Caller, id: &str) -> Result<TokenRecord> {
        lifecycle::get(&self.store, &self.settings.authority, caller, id).await
    }

    pub async fn list_tokens(
        &self,
        caller: &Caller,
        params: &ListParams,
    ) -> Result<Vec<TokenRecord>> {
        lifecycle::list(&self.store, &self.settings.authority, caller, params).await
    }

    /// Revokes a token, and with `cascade` every token below it; this replica sees its own
    /// revocations before it answers, the others through the store's revocation feed.
    pub async fn revoke_token(&self, caller: &Caller, id: &str, cascade: bool) -> Result<Revoked> {
        self.rate_limits.change(caller)?;
        let revoked =
            lifecycle::revoke(&self.store, &self.settings.authority, caller, id, cascade).await?;
        let ids: Vec<&str> = std::iter::once(&revoked.record)
            .chain(&revoked.descendants)
            .map(|record| record.id.as_str())
            .collect();
        self.apply(&Change::Revoked(&ids));
        Ok(revoked)
    }

    /// Suspends (`true`) or resumes a token; this replica sees the change before it answers, the
    /// others through the store's revocation feed.
    pub async fn set_suspended(
        &self,
        caller: &Caller,
        id: &str,
        suspend: bool,
    ) -> Result<TokenRecord> {
        self.rate_limits.change(caller)?;
        let done =
            lifecycle::set_suspended(&self.store, &self.settings.authority, caller, id, suspend)
                .await?;
        if done.changed {
            let ids: Vec<&str> = std::iter::once(&done.record)
                .chain(&done.descendants)
                .map(|record| record.id.as_str())
                .collect();
            self.apply(&if suspend {
                Change::Suspended(&ids)
            } else {
                Change::Resumed(&ids)
            });
        }
        Ok(done.record)
    }

    /// Replaces a token with a new one (a creation, counted as one), revoking the old at once or,
    /// with an overlap, at its `retires_at`.
    pub async fn rotate_token(&self, caller: &Caller, id: &str, how: Rotation) -> Result<Created> {
        self.rate_limits.create(caller)?;
        if how.overlap > self.settings.rotation_max_overlap {
            return Err(Error::bad_request(format!(
                "overlap is longer than {} seconds (ROTATION_MAX_OVERLAP): ask for less",
                self.settings.rotation_max_overlap.as_secs()
            )));
        }
        let created = lifecycle::rotate(
            &self.store,
            &self.keys,
            &self.settings.webhooks.expiry_warnings,
            &self.settings.authority,
            caller,
            id,
            how,
        )
        .await?;
        self.apply(&Change::Rotated(&created.record, how.overlap.is_zero()));
        Ok(created)
    }

    /// The calling token's own record (`/self`): 403 for a caller that is not a token of this
    /// service.
    pub async fn own_token(&self, caller: &Caller) -> Result<TokenRecord> {
        let id = own_token_id(caller)?;
        let mut conn = self.store.acquire().await?;
        conn.db()
            .get_token(&caller.org_id, id, None, store::Lock::None)
            .await?
            .ok_or_else(|| Error::NotFound("access token not found".to_owned()))
    }

    /// The calling token rotates itself (`/self/rotate`; api and app tokens only).
    pub async fn rotate_own_token(
        &self,
        caller: &Caller,
        overlap: std::time::Duration,
    ) -> Result<Created> {
        let id = own_token_id(caller)?.to_owned();
        let record = self.own_token(caller).await?;
        if !matches!(record.token_type, TokenType::Api | TokenType::App) {
            return Err(Error::forbidden(format!(
                "a token of type {} cannot rotate itself: only api and app tokens do; ask whoever manages it",
                record.token_type.as_str()
            )));
        }
        self.rotate_token(
            caller,
            &id,
            Rotation {
                overlap,
                itself: true,
            },
        )
        .await
    }

    /// The token `token` revokes itself (`DELETE /self`), whatever its type: holding a stored
    /// token of this service is authority enough to end it (a suspended one too). A token that
    /// is not valid is refused as any caller is (401, counted against `address`); a trusted
    /// issuer's token, or a contact identification token (never stored), is a 403.
    pub async fn revoke_own_token(
        &self,
        token: Option<&str>,
        address: Option<&str>,
        user_agent: Option<String>,
    ) -> Result<TokenRecord> {
        let keys = self.keys.current();
        let own = match token.map(|t| keys::verify::verify_own(&keys, t)) {
            Some(Ok(own)) => own,
            // Refused as a caller is (the reason, the log, the count), or a 403 for a person.
            _ => {
                self.authenticate(token, address).await?;
                return Err(Error::forbidden(
                    "the caller is not a token of this service: /self is for a token managing itself",
                ));
            }
        };
        if let Some(ip) = address {
            self.rate_limits.check_address(ip)?;
        }
        let (Some(org_id), Some(id)) = (own.claim_str("org_id"), own.claim_str("token_id")) else {
            return Err(Error::forbidden(
                "this token is never stored (contact identification): there is nothing to revoke; it ends at its exp",
            ));
        };
        if !own.set.has_status_lists() {
            return Err(Error::forbidden(
                "this token is never stored (contact identification): there is nothing to revoke; it ends at its exp",
            ));
        }
        if self.revocations.refusal(org_id, id).await? == Some(Refused::Revoked) {
            return Err(Error::InvalidToken("the token has been revoked"));
        }
        let actor = tokens::Actor {
            org_id: org_id.to_owned(),
            home_org_id: None,
            user_id: own.claim_str("user_id").unwrap_or_default().to_owned(),
            token_id: Some(id.to_owned()),
            source_ip: address.map(str::to_owned),
            user_agent,
        };
        let record = lifecycle::revoke_itself(&self.store, &actor).await?;
        self.apply(&Change::Revoked(&[record.id.as_str()]));
        Ok(record)
    }

    /// Creates a federated credential (admins).
    pub async fn create_federated_credential(
        &self,
        caller: &Caller,
        body: federation::CreateCredentialBody,
    ) -> Result<federation::Credential> {
        self.rate_limits.change(caller)?;
        federation::create(
            &self.store,
            &self.settings.authority,
            &self.settings.federation_issuers,
            caller,
            body,
        )
        .await
    }

    pub async fn federated_credentials(
        &self,
        caller: &Caller,
        after: Option<(store::types::Timestamp, &str)>,
        limit: i64,
    ) -> Result<Vec<store::FederatedCredentialRow>> {
        federation::list(&self.store, &self.settings.authority, caller, after, limit).await
    }

    pub async fn federated_credential(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<federation::Credential> {
        federation::get(&self.store, &self.settings.authority, caller, id).await
    }

    /// Deletes a federated credential; its tokens and those made from them are refused from the
    /// answer on (this replica) and within a second everywhere.
    pub async fn delete_federated_credential(&self, caller: &Caller, id: &str) -> Result<usize> {
        self.rate_limits.change(caller)?;
        let revoked = federation::delete(&self.store, &self.settings.authority, caller, id).await?;
        let ids: Vec<&str> = revoked.iter().map(|r| r.id.as_str()).collect();
        self.apply(&Change::Revoked(&ids));
        Ok(revoked.len())
    }

    /// A workload's OIDC token exchanged for an assume token (RFC 8693), from `address`: a
    /// refusal is counted against it as a failed authentication.
    pub async fn exchange_token(
        &self,
        request: &federation::ExchangeRequest,
        address: Option<&str>,
        user_agent: Option<String>,
    ) -> Result<std::result::Result<Created, federation::Refused>> {
        if let Some(ip) = address {
            self.rate_limits.check_address(ip)?;
        }
        let refused = |refusal: federation::Refused| {
            tracing::info!(error = refusal.error, reason = %refusal.description, "token exchange refused");
            if let Some(ip) = address {
                self.rate_limits.failed_authentication(ip);
            }
            Ok(Err(refusal))
        };
        let (claims, credential) =
            match federation::match_credential(&self.store, &self.federation, request).await? {
                Ok(matched) => matched,
                Err(refusal) => return refused(refusal),
            };
        let iss = claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let Some(jti) = claims
            .get("jti")
            .and_then(serde_json::Value::as_str)
            .filter(|j| !j.is_empty())
        else {
            return refused(federation::Refused {
                error: "invalid_request",
                description:
                    "subject_token has no jti: a token whose replay cannot be told apart is refused"
                        .to_owned(),
            });
        };
        if !federation::remember(&self.store, iss, &claims).await? {
            return refused(federation::Refused {
                error: "invalid_request",
                description: "subject_token was exchanged before (its jti): a workload token is exchanged once".to_owned(),
            });
        }
        let caller = Caller {
            source_ip: address.map(str::to_owned),
            user_agent,
            ..federation::credential_caller(&credential)
        };
        let new = NewToken::parse(CreateTokenBody {
            name: Some(credential.name.clone()),
            // An assume token lives an hour (`EXCHANGED_LIFETIME_SECONDS`), its type's lifetime.
            token_type: Some("assume".to_owned()),
            read_only: Some(credential.read_only),
            anonymize: Some(credential.anonymize),
            ..CreateTokenBody::default()
        })?;
        // The credential's admin granted these roles; the creation roles of people do not apply.
        let created = match lifecycle::create(
            &self.store,
            &self.policies,
            &self.keys,
            &self.settings.webhooks.expiry_warnings,
            &tokens::Authority::default(),
            &caller,
            new,
        )
        .await
        {
            Ok(created) => created,
            Err(Error::BadRequest(why) | Error::Forbidden(why)) => {
                return refused(federation::Refused {
                    error: "invalid_request",
                    description: format!("the organization's policy refuses the token: {why}"),
                });
            }
            Err(other) => return Err(other),
        };
        let details = serde_json::json!({
            "credential": credential.id,
            "workload": {"iss": iss, "sub": claims.get("sub"), "jti": jti},
        })
        .to_string();
        let mut conn = self.store.acquire().await?;
        conn.db()
            .set_creation_details(&created.record.id, &details)
            .await?;
        drop(conn);
        self.apply(&Change::Created(&created.record));
        Ok(Ok(created))
    }

    /// Whether the settings page offers its development sign-in: on the embedded store only.
    pub fn offers_development_sign_in(&self) -> bool {
        matches!(self.settings.database, store::Database::Sqlite(_))
    }

    /// The settings page's development sign-in (the embedded store, loopback clients: the
    /// caller checks both): an api caller of `org` for `user` with `roles` (slugs of `org`, or
    /// role ids of it), for a week (the tokens it creates live within it), minted as
    /// `access-tokens dev-token` mints one.
    pub async fn development_sign_in(
        &self,
        org: &str,
        user: &str,
        roles: &[String],
    ) -> Result<Created> {
        if !self.offers_development_sign_in() {
            return Err(Error::NotFound(
                "the development sign-in exists on the embedded store only".to_owned(),
            ));
        }
        let text = |field: &str, value: &str| -> Result<String> {
            let value = value.trim();
            if value.is_empty() || value.chars().count() > 255 || value.contains(':') {
                return Err(Error::bad_request(format!(
                    "{field} must be 1 to 255 characters without a colon"
                )));
            }
            Ok(value.to_owned())
        };
        let org = text("organization", org)?;
        let user = text("user", user)?;
        let roles = roles
            .iter()
            .map(|role| match role.trim().split_once(':') {
                None => text("a role", role).map(|slug| format!("{org}:{slug}")),
                Some((o, slug)) if o == org => {
                    text("a role", slug).map(|slug| format!("{org}:{slug}"))
                }
                Some(_) => Err(Error::bad_request(format!(
                    "role {role:?} is not a role of organization {org}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let caller = Caller {
            user_agent: Some("access-tokens settings page (development sign-in)".to_owned()),
            ..Caller::user(
                &self.keys.current().set(KeySetName::Api).issuer,
                org,
                user,
                roles,
            )
        };
        let new = NewToken::parse(CreateTokenBody {
            name: Some(format!("dev caller {}", caller.user_id)),
            token_type: Some("api".to_owned()),
            expires_in: Some(serde_json::Value::String("7d".to_owned())),
            ..CreateTokenBody::default()
        })?;
        // As `dev-token`: the roles are asserted here, so no role setting is asked to approve them.
        let created = lifecycle::create(
            &self.store,
            &self.policies,
            &self.keys,
            &self.settings.webhooks.expiry_warnings,
            &tokens::Authority::default(),
            &caller,
            new,
        )
        .await?;
        self.apply(&Change::Created(&created.record));
        Ok(created)
    }

    /// The settings page's sign-in, when one is configured.
    pub fn ui_sign_in(&self) -> Option<&ui_sign_in::UiSignIn> {
        self.ui_sign_in.as_ref()
    }

    /// Revokes the rotating tokens whose time has come; this replica sees them refused before it
    /// returns, the others through the store's revocation feed.
    pub async fn retire_rotated(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let retired = lifecycle::retire_due(&self.store).await?;
            if retired.is_empty() {
                return Ok(total);
            }
            total += retired.len();
            let ids: Vec<&str> = retired.iter().map(|r| r.id.as_str()).collect();
            tracing::info!(
                tokens = ids.len(),
                "retired rotated tokens at the end of their overlap"
            );
            self.apply(&Change::Revoked(&ids));
            if retired.len() < lifecycle::RETIRE_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// The caller's organization's policy (the defaults when it never set one); any member may
    /// read it.
    pub async fn policy(&self, caller: &Caller) -> Result<Policy> {
        policy::get(&self.store, caller).await
    }

    /// Replaces the caller's organization's policy (admins only), audited.
    pub async fn set_policy(&self, caller: &Caller, body: PolicyBody) -> Result<Policy> {
        let (policy, changed) = policy::put(
            &self.store,
            &self.policies,
            &self.settings.authority,
            caller,
            body,
        )
        .await?;
        if changed {
            self.apply(&Change::PolicyChanged);
        }
        Ok(policy)
    }

    /// Revokes each token of `tokens` that is a stored, unexpired token of this service, whoever
    /// sends it (possession is the authority): at most [`leaks::MAX_REPORTED`], counted per
    /// client `address` per hour. Answers how many were received, whatever they were, so that
    /// the answer says nothing of any token.
    pub async fn revoke_by_possession(
        &self,
        address: Option<&str>,
        user_agent: Option<String>,
        tokens: &[String],
    ) -> Result<usize> {
        self.rate_limits
            .revoke_by_possession(address.unwrap_or("unknown"))?;
        if tokens.len() > leaks::MAX_REPORTED {
            return Err(Error::bad_request(format!(
                "at most {} tokens per request; send the rest in another",
                leaks::MAX_REPORTED
            )));
        }
        let report = leaks::Report {
            actor_type: "possession",
            reason: "reported",
            url: None,
            source: None,
            source_ip: address.map(str::to_owned),
            user_agent,
        };
        self.revoke_reported(tokens, &report).await?;
        Ok(tokens.len())
    }

    /// Revokes what a report names and tells the replica's followers of it; answers the revoked
    /// ones with their positions in `tokens`.
    async fn revoke_reported(
        &self,
        tokens: &[String],
        report: &leaks::Report,
    ) -> Result<Vec<(usize, TokenRecord)>> {
        let revoked =
            leaks::revoke_reported(&self.store, &self.keys.current(), tokens, report).await?;
        if !revoked.is_empty() {
            let ids: Vec<&str> = revoked.iter().map(|(_, r)| r.id.as_str()).collect();
            tracing::info!(
                revoked = ids.len(),
                by = report.actor_type,
                "tokens revoked on a report"
            );
            self.apply(&Change::Revoked(&ids));
        }
        Ok(revoked)
    }

    /// Receives a GitHub secret scanning alert: verified against GitHub's keys (401 otherwise,
    /// revoking nothing), each token of this service in it revoked as leaked, with where it was
    /// found; answers a label per match. 404 unless `SECRET_SCANNING_GITHUB` is on.
    pub async fn github_alert(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        address: Option<&str>,
    ) -> Result<Vec<secret_scanning::Label>> {
        // An unsigned request is refused as such, whether alerts are received or not.
        if key_id.is_none_or(str::is_empty) || signature.is_none_or(str::is_empty) {
            return Err(Error::InvalidSignature(
                "Github-Public-Key-Identifier and Github-Public-Key-Signature are required",
            ));
        }
        let Some(github) = &self.github else {
            return Err(Error::NotFound(
                "GitHub secret scanning alerts are not received here (SECRET_SCANNING_GITHUB)"
                    .to_owned(),
            ));
        };
        let matches = github.verify(key_id, signature, body).await?;
        let mut labels = Vec::with_capacity(matches.len());
        for m in matches {
            let report = leaks::Report {
                actor_type: "secret_scanning",
                reason: "leaked",
                url: m.url,
                source: m.source,
                source_ip: address.map(str::to_owned),
                user_agent: Some("GitHub secret scanning".to_owned()),
            };
            let revoked = self
                .revoke_reported(std::slice::from_ref(&m.token), &report)
                .await?;
            labels.push(secret_scanning::Label {
                token_hash: secret_scanning::token_hash(&m.token),
                token_type: m.token_type,
                label: if revoked.is_empty() {
                    "false_positive"
                } else {
                    "true_positive"
                },
            });
        }
        Ok(labels)
    }

    /// Revokes every token user `user_id` created in the caller's organization and every token
    /// made from them (admins only, not read-only tokens); answers their ids.
    pub async fn offboard(&self, caller: &Caller, user_id: &str) -> Result<Vec<String>> {
        if !self.settings.authority.is_admin(caller) {
            return Err(Error::forbidden(format!(
                "offboarding a user needs a role in organization {} with one of the slugs {} \
                 (TOKEN_ADMIN_ROLES)",
                caller.org_id,
                self.settings.authority.admin_roles.join(", ")
            )));
        }
        if caller.read_only {
            return Err(Error::forbidden("a read-only token cannot revoke tokens"));
        }
        self.rate_limits.change(caller)?;
        let user = offboard::user_id(user_id)?;
        let revoked =
            offboard::offboard(&self.store, &caller.org_id, user, &caller.actor(), None).await?;
        let ids: Vec<&str> = revoked.iter().map(|r| r.id.as_str()).collect();
        if !ids.is_empty() {
            tracing::info!(revoked = ids.len(), "a user's tokens revoked (offboarded)");
            self.apply(&Change::Revoked(&ids));
        }
        Ok(ids.into_iter().map(str::to_owned).collect())
    }

    /// The caller's organization's token that `token` is (admins only), whatever its state; 404
    /// for anything else.
    pub async fn identify(&self, caller: &Caller, token: &str) -> Result<TokenRecord> {
        if !self.settings.authority.is_admin(caller) {
            return Err(Error::forbidden(format!(
                "identifying a token needs a role in organization {} with one of the slugs {} \
                 (TOKEN_ADMIN_ROLES)",
                caller.org_id,
                self.settings.authority.admin_roles.join(", ")
            )));
        }
        leaks::identify(&self.store, &self.keys.current(), &caller.org_id, token).await
    }

    /// Registers a webhook endpoint of the caller's organization (admins only); answers it with
    /// its signing secret, shown this once.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        body: CreateWebhookBody,
    ) -> Result<WithSecret> {
        self.webhooks
            .create(&self.settings.authority, caller, body)
            .await
    }

    pub async fn list_webhooks(&self, caller: &Caller) -> Result<Vec<Endpoint>> {
        self.webhooks.list(&self.settings.authority, caller).await
    }

    pub async fn get_webhook(&self, caller: &Caller, id: &str) -> Result<Endpoint> {
        self.webhooks
            .get(&self.settings.authority, caller, id)
            .await
    }

    /// Deletes an endpoint with its deliveries, pending ones included.
    pub async fn delete_webhook(&self, caller: &Caller, id: &str) -> Result<()> {
        self.webhooks
            .delete(&self.settings.authority, caller, id)
            .await
    }

    pub async fn rotate_webhook_secret(&self, caller: &Caller, id: &str) -> Result<WithSecret> {
        self.webhooks
            .rotate_secret(&self.settings.authority, caller, id)
            .await
    }

    /// A page of an endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.webhooks
            .deliveries(&self.settings.authority, caller, id, before, limit)
            .await
    }

    pub async fn redeliver_webhook(
        &self,
        caller: &Caller,
        id: &str,
        delivery: &str,
    ) -> Result<Delivery> {
        self.webhooks
            .redeliver(&self.settings.authority, caller, id, delivery)
            .await
    }

    /// Dispatches the organizations' events to their webhooks, tells of expiries and delivers,
    /// until the task is dropped (every replica runs it; the store shares the work out).
    pub async fn run_webhooks(&self) {
        let deliver = tokio::spawn(self.webhooks.clone().deliver());
        // Aborted with this task.
        struct AbortOnDrop(tokio::task::JoinHandle<()>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let _deliver = AbortOnDrop(deliver);
        self.webhooks.dispatch_and_scan().await;
    }

    /// A page of the caller's organization's audit events, newest first, before event `before`:
    /// all of them for an admin, else those about tokens the caller created.
    pub async fn audit_events(
        &self,
        caller: &Caller,
        token_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let query = EventQuery {
            org_id: &caller.org_id,
            token_id,
            owner: self.settings.authority.owner_filter(caller),
            before,
            limit,
        };
        Ok(self.store.read_events(&query).await?)
    }

    /// The one place a change this replica committed (its audit event written in the same
    /// transaction) reaches what follows changes: the in-memory revocation set (so this replica
    /// refuses a revoked token before it answers), the metrics, and the status lists, woken to
    /// render again. Other replicas learn of it through the store's feed
    /// ([`Self::follow_other_replicas`]); the audit events table is what later subscribers (the
    /// lifecycle webhooks) read as their outbox.
    pub fn apply(&self, change: &Change<'_>) {
        // Its audit event waits in the outbox: dispatched now, not at the next poll.
        self.webhooks.changed();
        let refuse = |id: &str, why: Refused| {
            self.revocations
                .change(StoreChange::Refused(id.to_owned(), why));
        };
        match *change {
            Change::Created(record) => {
                self.metrics.token_created(record.token_type.as_str());
                // A new token is valid: its list entry is already 0.
            }
            Change::Revoked(ids) => {
                for id in ids {
                    refuse(id, Refused::Revoked);
                }
                self.metrics.tokens_revoked.inc_by(ids.len() as u64);
                self.status_lists.tokens_changed(ids.iter().copied());
            }
            Change::Rotated(record, old_revoked) => {
                if let Some(old) = record.rotated_from.as_ref().filter(|_| old_revoked) {
                    refuse(old, Refused::Revoked);
                    self.status_lists.tokens_changed([old.as_str()]);
                }
                self.metrics.tokens_rotated.inc();
                self.metrics.token_created(record.token_type.as_str());
            }
            Change::Suspended(ids) => {
                for id in ids {
                    refuse(id, Refused::Suspended);
                }
                self.metrics.tokens_suspended.inc_by(ids.len() as u64);
                self.status_lists.tokens_changed(ids.iter().copied());
            }
            Change::Resumed(ids) => {
                for id in ids {
                    self.revocations
                        .change(StoreChange::Resumed((*id).to_owned()));
                }
                self.metrics.tokens_resumed.inc_by(ids.len() as u64);
                self.status_lists.tokens_changed(ids.iter().copied());
            }
            Change::PolicyChanged => {}
        }
    }

    /// Follows the other replicas' changes (the store's revocation feed) until the task is
    /// dropped: each reaches the revocation set, and the status lists update the token it names
    /// (its list, read by id); after a reconnection they read everything again.
    pub async fn follow_other_replicas(&self) {
        self.revocations
            .follow(|changed| match changed {
                Some(id) => self.status_lists.tokens_changed([id]),
                None => self.status_lists.wake(),
            })
            .await;
    }

    /// Whether the database answers (readiness).
    pub async fn ready(&self) -> Result<()> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(Error::Stopping);
        }
        self.store.ping().await.map_err(|error| {
            tracing::warn!(%error, "readiness check failed: the database does not answer");
            Error::Unavailable
        })
    }

    /// What a replica does besides answering requests, until the task is dropped: notice key
    /// rotations and revocations, keep the status lists current and signed, and write
    /// `last_used` marks.
    pub async fn maintain(&self) {
        let mut keys = tokio::time::interval(self.settings.intervals.key_refresh);
        let mut usage = tokio::time::interval(self.settings.intervals.usage_flush);
        let mut lists = tokio::time::interval(self.settings.intervals.status_list_refresh);
        let mut retire = tokio::time::interval(self.settings.intervals.retire_rotated);
        retire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        usage.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        lists.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_update = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.status_lists.changed() => {
                    // Changes arriving before the next update may start are taken together: a
                    // storm of changes costs a bounded share of a core, not an update per change.
                    tokio::time::sleep_until(next_update).await;
                    let started = tokio::time::Instant::now();
                    let outcome = self.status_lists.apply_changes().await;
                    next_update = started + crate::status_lists::update_spacing(started.elapsed());
                    if let Err(error) = outcome {
                        tracing::warn!(%error, "could not render the status lists; trying again within a second");
                    }
                }
                _ = lists.tick() => {
                    // While the revocation feed is down, no other replica's change reaches this
                    // one: the lists are read again every interval, as the caller checks read
                    // the rows meanwhile, so that a verifier's staleness stays within the bound.
                    let reread = self.revocations.feed_down();
                    if let Err(error) = self.status_lists.refresh(reread).await {
                        tracing::warn!(%error, "could not refresh the status lists");
                    }
                }
                _ = keys.tick() => {
                    match self.keys.refresh(&self.store, &self.settings.key_encryption_key).await {
                        // The lists are signed by the active key: the next refresh signs them anew.
                        Ok(true) => tracing::info!("signing keys changed: key sets reloaded"),
                        Ok(false) => {}
                        Err(error) => tracing::warn!(%error, "could not refresh signing keys"),
                    }
                }
                _ = retire.tick() => {
                    // Every replica looks: whichever gets there first revokes, once.
                    if let Err(error) = self.retire_rotated().await {
                        tracing::warn!(%error, "could not retire rotated tokens; trying again");
                    }
                }
                _ = usage.tick() => {
                    if let Err(error) = self.usage.flush(&self.store).await {
                        tracing::warn!(%error, "could not write usage marks; keeping them for the next try");
                    }
                }
            }
        }
    }

    /// Writes the last `last_used` marks and closes the store.
    pub async fn close(&self) {
        if let Err(error) = self.usage.flush(&self.store).await {
            tracing::warn!(%error, "could not write the last usage marks");
        }
        self.store.close().await;
    }
}

/// The id of the calling token, for `/self`: 403 for a caller that is not a token of this
/// service (a person signed in at an identity provider has no token to manage as itself).
fn own_token_id(caller: &Caller) -> Result<&str> {
    caller.token_id.as_deref().ok_or_else(|| {
        Error::forbidden(
            "the caller is not a token of this service: /self is for api, app and assume tokens managing themselves",
        )
    })
}

/// The gauges of state, read when Prometheus scrapes: the key ring as loaded and the pool, from
/// memory (no query per scrape).
struct Gauges {
    keys: Arc<KeyRing>,
    store: Store,
}

impl StateSource for Gauges {
    fn keys(&self) -> KeyGauges {
        let states = self.keys.current().states();
        let now = chrono::Utc::now();
        KeyGauges {
            counts: states
                .counts
                .into_iter()
                .map(|(set, state, n)| (set.as_str(), state.as_str(), n))
                .collect(),
            active_ages: states
                .activated
                .into_iter()
                .map(|(set, at)| {
                    let age = now.signed_duration_since(at.0);
                    (set.as_str(), age.num_milliseconds().max(0) as f64 / 1000.0)
                })
                .collect(),
        }
    }

    fn pool(&self) -> (u32, u32, u32) {
        self.store.pool_state()
    }
}
