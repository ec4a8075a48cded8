//! Every setting, from flags or environment variables, validated once at start-up. An error
//! names the variable and the fix.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use url::{Host, Url};

pub use crate::issuers::{IssuerSpec, KeysPolicy, Mapping, Policy as IssuerPolicy};
use crate::keys::KeyEncryptionKey;
pub use crate::store::{Database, PgDatabase, Pooler};
pub use crate::tokens::Authority;

/// Where keys and records live: what every command that touches the store needs.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Where token records and keys live: postgres://user@host/db, or sqlite://path for the
    /// embedded store. Unset: the embedded store in ./data/access-tokens.db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Base64 of 32 random bytes; private keys are stored encrypted with it. Required with
    /// PostgreSQL; on the embedded store, unset means the key-encryption-key file next to the
    /// database (created with the database, mode 0600).
    #[arg(long, env = "KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,
    /// PostgreSQL directly, for what needs a session of its own: the revocation listener's
    /// LISTEN and the migrations. Unset: DATABASE_URL. Required with DATABASE_POOLER=transaction.
    #[arg(long, env = "DATABASE_LISTEN_URL", hide_env_values = true)]
    pub database_listen_url: Option<String>,
    /// A streaming standby of the primary that serves token lists and gets, audit events and
    /// policy reads once it has replayed the caller's writes; the primary serves them when it
    /// lags or is away. Unset: the primary serves every read.
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
    /// What stands between the service and PostgreSQL at DATABASE_URL and DATABASE_READ_URL:
    /// `none` (or a pooler in session mode), or `transaction` for a pooler in transaction mode
    /// (PgBouncer's pool_mode = transaction): no statement stays prepared across transactions.
    #[arg(long, env = "DATABASE_POOLER", default_value = "none")]
    pub database_pooler: String,
}

/// Where the service listens and is reached: what `serve` binds and what every issuer derives
/// from, so that `dev-token` takes it the same way.
#[derive(Debug, Clone, clap::Args)]
pub struct AddressArgs {
    /// Address to bind.
    #[arg(
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080",
        hide_env_values = true
    )]
    pub listen_addr: String,
    /// The URL callers and verifiers reach the service at; issuers derive from it.
    /// Defaults to http://{LISTEN_ADDR}.
    #[arg(long, env = "PUBLIC_URL", hide_env_values = true)]
    pub public_url: Option<String>,
}

impl AddressArgs {
    /// The address to bind and the public URL given (without a trailing slash), validated.
    pub fn validate(&self) -> Result<(SocketAddr, Option<String>), ConfigError> {
        let listen_addr: SocketAddr = match self.listen_addr.parse() {
            Ok(addr) => addr,
            Err(_) => {
                return err(format!(
                    "LISTEN_ADDR {:?} is not an address: use host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                    self.listen_addr
                ));
            }
        };
        let public_url = match &self.public_url {
            Some(url) => Some(parse_base_url("PUBLIC_URL", url)?.0),
            None => None,
        };
        Ok((listen_addr, public_url))
    }

    /// The URL the service serves at with these settings: `PUBLIC_URL`, else
    /// `http://{LISTEN_ADDR}` (as `serve` derives it when the port is not 0).
    pub fn public_url(&self) -> Result<String, ConfigError> {
        let (listen_addr, public_url) = self.validate()?;
        Ok(public_url.unwrap_or_else(|| format!("http://{listen_addr}")))
    }
}

/// The settings as given on the command line or in the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub address: AddressArgs,
    /// Comma-separated issuer URLs whose tokens may call the management API, read as Cognito's
    /// (`custom:ivy_org_id`, ROLES_CLAIM, token_use). Each is the exact `iss` of its tokens (a
    /// trailing slash is part of it). https://, or http:// on a loopback host (or anywhere with
    /// ALLOW_INSECURE_ISSUERS=true); never one of this service's own issuers.
    #[arg(long, env = "TRUSTED_ISSUERS", value_delimiter = ',')]
    pub trusted_issuers: Vec<String>,
    /// A TOML file of further trusted issuers, any OpenID Connect provider, each with its claim
    /// mapping (`[[issuer]]` tables: url, audiences, organization or organization_claim,
    /// user_claim, roles_claim, roles_format).
    #[arg(long, env = "TRUSTED_ISSUERS_FILE")]
    pub trusted_issuers_file: Option<PathBuf>,
    /// Accept http:// trusted issuers on hosts other than loopback (their keys, and with them any
    /// caller, could be replaced in transit).
    #[arg(
        long,
        env = "ALLOW_INSECURE_ISSUERS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_insecure_issuers: bool,
    /// Comma-separated Cognito app client ids whose tokens may call: the `aud` of an ID token,
    /// the `client_id` of an access token. Unset: any client of the trusted issuers.
    #[arg(long, env = "TRUSTED_AUDIENCES", value_delimiter = ',')]
    pub trusted_audiences: Vec<String>,
    /// Comma-separated `token_use` values accepted from trusted issuers: id, access. Unset: both.
    /// A token without `token_use` is refused.
    #[arg(long, env = "TRUSTED_TOKEN_USE", value_delimiter = ',')]
    pub trusted_token_use: Vec<String>,
    /// How long a trusted issuer's keys are cached when its JWKS response names no
    /// Cache-Control max-age (seconds, or a number with s, m or h).
    #[arg(long, env = "ISSUER_KEYS_TTL", default_value = "10m", value_parser = duration)]
    pub issuer_keys_ttl: Duration,
    /// The shortest time a trusted issuer's keys are cached, whatever its max-age says.
    #[arg(long, env = "ISSUER_KEYS_TTL_MIN", default_value = "30s", value_parser = duration)]
    pub issuer_keys_ttl_min: Duration,
    /// The longest time a trusted issuer's keys are cached, whatever its max-age says: a key the
    /// issuer removed is trusted at most this long (plus one fetch).
    #[arg(long, env = "ISSUER_KEYS_TTL_MAX", default_value = "1h", value_parser = duration)]
    pub issuer_keys_ttl_max: Duration,
    /// How long past their TTL a trusted issuer's cached keys stay usable while refetching fails.
    #[arg(long, env = "ISSUER_KEYS_GRACE", default_value = "1h", value_parser = duration)]
    pub issuer_keys_grace: Duration,
    /// How long verifiers may cache a status list before fetching it again (the list token's
    /// `ttl` and the `max-age` of its response): seconds, or a number with s, m or h.
    #[arg(long, env = "STATUS_LIST_TTL", default_value = "60", value_parser = duration)]
    pub status_list_ttl: Duration,
    /// How long a replica told to stop (SIGTERM, SIGINT) goes on serving while its readiness
    /// check answers 503, so that a load balancer takes it out before it stops accepting:
    /// seconds, or a number with s, m or h; 0 stops accepting at once.
    #[arg(long, env = "SHUTDOWN_DRAIN", default_value = "0", value_parser = duration)]
    pub shutdown_drain: Duration,
    /// The longest a request may take: past it the answer is 408 and its work is dropped; on
    /// PostgreSQL every statement of the service's pool is cancelled by the server past it too
    /// (`statement_timeout`). Seconds, or a number with s, m or h; at least a second.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Comma-separated issuers whose workload tokens federated credentials may name (exchanged at
    /// POST /v1/access-tokens/token). https://, or http:// on a loopback host (or anywhere with
    /// ALLOW_INSECURE_ISSUERS=true). Empty: federation is off.
    #[arg(
        long,
        env = "FEDERATION_ISSUERS",
        value_delimiter = ',',
        default_value = "https://token.actions.githubusercontent.com,https://gitlab.com"
    )]
    pub federation_issuers: Vec<String>,
    /// The longest overlap a rotation may ask for: the old token stays valid that long beside the
    /// new one (seconds, or a number with s, m, h or d; at most 7d).
    #[arg(long, env = "ROTATION_MAX_OVERLAP", default_value = "7d", value_parser = duration)]
    pub rotation_max_overlap: Duration,
    /// Claim holding a caller's role ids.
    #[arg(long, env = "ROLES_CLAIM", default_value = "assignments")]
    pub roles_claim: String,
    /// Comma-separated role slugs whose holders manage every token of their organization; others
    /// manage only the tokens they created. A slug is the part of a role id after the
    /// organization (`123:owner` is `owner`).
    #[arg(
        long,
        env = "TOKEN_ADMIN_ROLES",
        value_delimiter = ',',
        default_value = "owner,admin"
    )]
    pub token_admin_roles: Vec<String>,
    /// Comma-separated role slugs whose holders (and admins) may create and rotate tokens.
    /// Unset: any member of the organization may.
    #[arg(long, env = "TOKEN_CREATE_ROLES", value_delimiter = ',')]
    pub token_create_roles: Vec<String>,
    /// Comma-separated role slugs whose holders may mint `portal_preview` and
    /// `contact_identification` tokens, which act for a portal user or a contact. Unset: the
    /// admin roles.
    #[arg(long, env = "IMPERSONATION_ROLES", value_delimiter = ',')]
    pub impersonation_roles: Vec<String>,
    /// Comma-separated origins allowed to call from a browser.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// A trusted issuer whose users sign in to the settings page at /ui/ with OpenID Connect (the
    /// authorization code flow with PKCE); unset: the page asks for a token to be pasted.
    #[arg(long, env = "UI_OIDC_ISSUER")]
    pub ui_oidc_issuer: Option<String>,
    /// The public client id of the settings page at that issuer.
    #[arg(long, env = "UI_OIDC_CLIENT_ID")]
    pub ui_oidc_client_id: Option<String>,
    /// Where the issuer sends the user back; registered with the client. Unset: {PUBLIC_URL}/ui/.
    #[arg(long, env = "UI_OIDC_REDIRECT_URI")]
    pub ui_oidc_redirect_uri: Option<String>,
    /// The scopes the page asks for.
    #[arg(long, env = "UI_OIDC_SCOPE", default_value = "openid email profile")]
    pub ui_oidc_scope: String,
    /// Comma-separated origins that may embed the settings page at /ui/ in a frame (the portals
    /// that show it); unset: none may (`frame-ancestors 'none'`).
    #[arg(long, env = "UI_FRAME_ANCESTORS", value_delimiter = ',')]
    pub ui_frame_ancestors: Vec<String>,
    /// Comma-separated `client_id:secret` pairs that may call the introspection endpoint
    /// (HTTP Basic). Secrets are at least 16 characters.
    #[arg(
        long,
        env = "INTROSPECTION_CLIENTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub introspection_clients: Vec<String>,
    /// Tokens created (or rotated) per organization per minute, on each replica; 0: no limit.
    #[arg(long, env = "RATE_LIMIT_CREATE_PER_ORG", default_value_t = 1200)]
    pub rate_limit_create_per_org: u32,
    /// Tokens created (or rotated) per caller (organization and user) per minute, on each
    /// replica; 0: no limit.
    #[arg(long, env = "RATE_LIMIT_CREATE_PER_CALLER", default_value_t = 300)]
    pub rate_limit_create_per_caller: u32,
    /// Revocations, suspensions and resumptions per organization per minute, on each replica
    /// (each one re-renders a status list on every replica); 0: no limit.
    #[arg(long, env = "RATE_LIMIT_CHANGE_PER_ORG", default_value_t = 600)]
    pub rate_limit_change_per_org: u32,
    /// Revocations, suspensions and resumptions per caller (organization and user) per minute,
    /// on each replica; 0: no limit.
    #[arg(long, env = "RATE_LIMIT_CHANGE_PER_CALLER", default_value_t = 120)]
    pub rate_limit_change_per_caller: u32,
    /// Failed authentications per client address per minute, on each replica; once used up, the
    /// address gets 429 until the minute is over. 0: no limit.
    #[arg(
        long,
        env = "RATE_LIMIT_FAILED_AUTH_PER_ADDRESS",
        default_value_t = 300
    )]
    pub rate_limit_failed_auth_per_address: u32,
    /// Failed authentications of one introspection client id per minute, on each replica, from
    /// any address; once used up, that client gets 429 until the minute is over. Twice the
    /// per-address default, so that one address alone cannot lock a client out. 0: no limit.
    #[arg(
        long,
        env = "RATE_LIMIT_FAILED_INTROSPECTION_PER_CLIENT",
        default_value_t = 600
    )]
    pub rate_limit_failed_introspection_per_client: u32,
    /// Requests of `POST /v1/access-tokens/revoke` (revocation by possession, unauthenticated)
    /// per client address per hour, on each replica; then 429 with Retry-After. 0: no limit.
    #[arg(long, env = "RATE_LIMIT_REVOKE_PER_ADDRESS", default_value_t = 60)]
    pub rate_limit_revoke_per_address: u32,
    /// Address of the metrics listener, which serves Prometheus metrics at /metrics and nothing
    /// else (never on LISTEN_ADDR). Empty: no metrics listener.
    #[arg(
        long,
        env = "METRICS_ADDR",
        default_value = DEFAULT_METRICS_ADDR,
        hide_env_values = true,
        value_parser = MetricsAddr::parse
    )]
    pub metrics_addr: MetricsAddr,
    /// Days before a token's expiry at which its organization's webhooks get `token.expiring`,
    /// comma-separated, each once. Empty: no warnings (`token.expired` is still sent).
    #[arg(long, env = "EXPIRY_WARNING_DAYS", default_value = "14,7,1")]
    pub expiry_warning_days: String,
    /// Accept webhook URLs whose host is or resolves to a private, loopback, link-local or
    /// metadata address (checked when an endpoint is created and again at every delivery).
    #[arg(
        long,
        env = "WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_allow_private: bool,
    /// Accept http:// webhook URLs on a loopback host (receivers under development); otherwise
    /// only https://.
    #[arg(
        long,
        env = "WEBHOOK_ALLOW_INSECURE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub webhook_allow_insecure: bool,
    /// How long a webhook receiver has to answer a delivery (connect, send, status line) before
    /// the attempt counts as failed and is retried.
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub webhook_timeout: Duration,
    /// Receive GitHub secret scanning alerts at POST /v1/access-tokens/secret-scanning/github
    /// (register the pattern of `access-tokens secret-pattern` with GitHub's partner program).
    #[arg(
        long,
        env = "SECRET_SCANNING_GITHUB",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub secret_scanning_github: bool,
    /// Where GitHub publishes the keys its alerts are signed with (https://, or http:// on a
    /// loopback host).
    #[arg(
        long,
        env = "SECRET_SCANNING_GITHUB_KEYS_URL",
        default_value = DEFAULT_GITHUB_KEYS_URL
    )]
    pub secret_scanning_github_keys_url: String,
}

/// GitHub's secret scanning keys.
pub const DEFAULT_GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// Where Prometheus scrapes a replica unless `METRICS_ADDR` says otherwise (9464: the port
/// registered for Prometheus exporters of this kind); loopback, so that nothing is exposed
/// before an operator decides where.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Limits per minute; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub create_per_org: u32,
    pub create_per_caller: u32,
    pub change_per_org: u32,
    pub change_per_caller: u32,
    pub failed_auth_per_address: u32,
    pub failed_introspection_per_client: u32,
    /// Requests of revocation by possession per client address per hour.
    pub revoke_per_address: u32,
}

impl RateLimitSettings {
    pub const OFF: Self = Self {
        create_per_org: 0,
        create_per_caller: 0,
        change_per_org: 0,
        change_per_caller: 0,
        failed_auth_per_address: 0,
        failed_introspection_per_client: 0,
        revoke_per_address: 0,
    };
}

/// Where and how lifecycle webhooks are delivered, and when expiry is warned of.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_private: bool,
    pub allow_insecure: bool,
    pub timeout: Duration,
    pub expiry_warnings: crate::tokens::notice::ExpiryWarnings,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_insecure: false,
            timeout: Duration::from_secs(10),
            expiry_warnings: crate::tokens::notice::ExpiryWarnings::default(),
        }
    }
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: Database,
    pub http: HttpSettings,
    /// `TRUSTED_ISSUERS`: Cognito-shaped issuers, read with `issuer_policy` and `roles_claim`.
    pub trusted_issuers: Vec<String>,
    /// `TRUSTED_ISSUERS_FILE`: issuers with their own mapping.
    pub issuers_file: Vec<IssuerSpec>,
    /// Whether plain-http issuers (and `jwks_uri`s) are accepted off loopback.
    pub allow_insecure_issuers: bool,
    /// What `TRUSTED_ISSUERS`' tokens must claim, and how long any issuer's keys are cached.
    pub issuer_policy: IssuerPolicy,
    pub roles_claim: String,
    /// Which role slugs make an admin, a creator, an impersonator.
    pub authority: Authority,
    /// The longest overlap a rotation may ask for (`ROTATION_MAX_OVERLAP`).
    pub rotation_max_overlap: Duration,
    /// Issuers whose workload tokens federated credentials may name (`FEDERATION_ISSUERS`).
    pub federation_issuers: Vec<String>,
    pub key_encryption_key: KeyEncryptionKey,
    /// A new embedded store's key file, written once the addresses are bound (`App::build`).
    pub new_key_file: Option<NewKeyFile>,
    pub introspection_clients: Vec<IntrospectionClient>,
    /// The status lists' `ttl` (`STATUS_LIST_TTL`); at least a second.
    pub status_list_ttl: Duration,
    pub intervals: Intervals,
    pub rate_limits: RateLimitSettings,
    pub webhooks: WebhookSettings,
    /// Where GitHub's secret scanning keys are read, when its alerts are received
    /// (`SECRET_SCANNING_GITHUB`); `None`: the endpoint answers 404.
    pub secret_scanning_github: Option<String>,
    /// The settings page's OpenID Connect sign-in (`UI_OIDC_*`); `None`: a token is pasted.
    pub ui_oidc: Option<UiOidcSettings>,
}

/// How the settings page signs a user in: the authorization code flow with PKCE at a trusted
/// issuer, for a public client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiOidcSettings {
    pub issuer: String,
    pub client_id: String,
    /// `None`: `{PUBLIC_URL}/ui/`.
    pub redirect_uri: Option<String>,
    pub scope: String,
}

/// Where and how the service listens: its addresses, the URL it is reached at, which browser
/// origins may call it, how long a client may dawdle, and how it stops.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen_addr: SocketAddr,
    /// Without a trailing slash; `None` derives it from the bound address (`http://{address}`).
    pub public_url: Option<String>,
    /// The metrics listener's address (`METRICS_ADDR`); `None`: metrics are off.
    pub metrics_addr: Option<SocketAddr>,
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Origins that may frame the settings page (`UI_FRAME_ANCESTORS`), as a browser sends them.
    pub ui_frame_ancestors: Vec<String>,
    /// How long a client may take to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
    /// How long a stopping replica serves with its readiness check failing (`SHUTDOWN_DRAIN`).
    pub shutdown_drain: Duration,
    /// The longest a request may take (`REQUEST_TIMEOUT`); 408 past it.
    pub request_timeout: Duration,
}

/// How often a replica does its background work: fixed in a deployment, short in the tests.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// How often `last_used` marks are written.
    pub usage_flush: Duration,
    /// How often a replica checks the stored keys for rotations and revocations.
    pub key_refresh: Duration,
    /// How often a replica looks for lists that other replicas started and for lists due to be
    /// signed again (revocations reach the lists at once, through the revocation feed).
    pub status_list_refresh: Duration,
    /// How often a replica looks for webhook work another replica's changes left (its own
    /// changes wake it at once).
    pub webhook_poll: Duration,
    /// How often the expiry notices are looked for (by one replica at a time).
    pub expiry_scan: Duration,
    /// How often each replica looks for rotating tokens whose overlap has ended, to revoke them.
    pub retire_rotated: Duration,
}

impl Intervals {
    pub const DEFAULT: Self = Self {
        usage_flush: USAGE_FLUSH_INTERVAL,
        key_refresh: KEY_REFRESH_INTERVAL,
        status_list_refresh: STATUS_LIST_REFRESH_INTERVAL,
        webhook_poll: Duration::from_secs(1),
        expiry_scan: Duration::from_secs(60),
        retire_rotated: Duration::from_millis(500),
    };
}

impl Settings {
    /// The URL issuers and `jwks_uri`s derive from: `PUBLIC_URL`, else `http://{address}` of the
    /// address the service listens on.
    pub fn public_url_for(&self, address: SocketAddr) -> String {
        self.http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"))
    }

    /// Every trusted issuer with its mapping: `TRUSTED_ISSUERS` read as Cognito's, then the
    /// file's.
    pub fn issuer_specs(&self) -> Vec<IssuerSpec> {
        let policy = &self.issuer_policy;
        self.trusted_issuers
            .iter()
            .map(|url| IssuerSpec {
                url: url.clone(),
                mapping: Mapping::cognito(
                    policy.audiences.clone(),
                    policy.token_uses.clone(),
                    self.roles_claim.clone(),
                ),
            })
            .chain(self.issuers_file.iter().cloned())
            .collect()
    }
}

/// Written at most this long after a token was first seen in use on a day.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Replicas switch to a rotated key, and stop accepting a revoked one, within this interval.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(2);
/// A client that has not sent a request's headers within this time is disconnected.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A list started on another replica is served here, and a list is signed again when due, within
/// this interval.
pub const STATUS_LIST_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
const MIN_CLIENT_SECRET_CHARS: usize = 16;
/// The embedded store when DATABASE_URL is unset.
pub const DEFAULT_SQLITE_PATH: &str = "./data/access-tokens.db";
/// The embedded store's key-encryption key, in the database's folder.
pub const KEY_FILE_NAME: &str = "key-encryption-key";

/// A client of the introspection endpoint. Only a SHA-256 of its secret is kept.
#[derive(Clone)]
pub struct IntrospectionClient {
    pub id: String,
    pub secret_sha256: [u8; 32],
}

impl std::fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl IntrospectionClient {
    pub fn parse(pair: &str) -> Result<Self, ConfigError> {
        let Some((id, secret)) = pair.split_once(':') else {
            return err("INTROSPECTION_CLIENTS entries are client_id:secret pairs");
        };
        if id.is_empty() || secret.chars().count() < MIN_CLIENT_SECRET_CHARS {
            return err(format!(
                "INTROSPECTION_CLIENTS entry for {id:?} needs a client id and a secret of at least {MIN_CLIENT_SECRET_CHARS} characters"
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            secret_sha256: sha256(secret.as_bytes()),
        })
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

impl StoreArgs {
    /// Parses the database URL: PostgreSQL, or the embedded store (also when unset).
    pub fn database(&self) -> Result<Database, ConfigError> {
        let url = SecretString::from(self.database_url.clone().unwrap_or_default());
        let url = url.expose_secret().trim();
        if url.is_empty() {
            return self.embedded(PathBuf::from(DEFAULT_SQLITE_PATH));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() || path.contains('?') {
                return err(
                    "DATABASE_URL sqlite:// needs a file path and no options, e.g. sqlite://data/access-tokens.db",
                );
            }
            return self.embedded(PathBuf::from(path));
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return err(
                "DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:port/database) or sqlite://path for the embedded store",
            );
        }
        let options = postgres_options("DATABASE_URL", url)?;
        let Some(pooler) = Pooler::parse(&self.database_pooler) else {
            return err(format!(
                "DATABASE_POOLER {:?} is not a pooling mode: use none, or transaction for PgBouncer in pool_mode = transaction",
                self.database_pooler
            ));
        };
        let optional = |variable: &str, value: &Option<String>| {
            let url = SecretString::from(value.clone().unwrap_or_default());
            match url.expose_secret().trim() {
                "" => Ok(None),
                url => postgres_options(variable, url).map(Some),
            }
        };
        let session = optional("DATABASE_LISTEN_URL", &self.database_listen_url)?;
        let read = optional("DATABASE_READ_URL", &self.database_read_url)?;
        if pooler == Pooler::Transaction && session.is_none() {
            return err(
                "DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL: the revocation listener's LISTEN and the migrations need a session, so point it at PostgreSQL itself, not at the pooler",
            );
        }
        Ok(Database::Postgres(Box::new(PgDatabase {
            options,
            session,
            read,
            pooler,
            // Set by `serve` from REQUEST_TIMEOUT; operator commands run without one.
            statement_timeout: None,
        })))
    }

    /// The key-encryption key: KEY_ENCRYPTION_KEY, or on the embedded store its key file, which
    /// is created together with a new database (here, at once: for the commands other than
    /// `serve`, which writes it only once it holds its addresses).
    pub fn key_encryption_key(&self, database: &Database) -> Result<KeyEncryptionKey, ConfigError> {
        let (key, new_file) = self.key_and_new_file(database)?;
        if let Some(file) = new_file {
            file.write()?;
        }
        Ok(key)
    }

    /// The key-encryption key, and for a new embedded store the key file still to write.
    fn key_and_new_file(
        &self,
        database: &Database,
    ) -> Result<(KeyEncryptionKey, Option<NewKeyFile>), ConfigError> {
        match (self.key_encryption_key.as_deref().map(str::trim), database) {
            (Some(text), _) if !text.is_empty() => KeyEncryptionKey::from_base64(text)
                .map(|key| (key, None))
                .map_err(|e| ConfigError(format!("KEY_ENCRYPTION_KEY {e}"))),
            (_, Database::Sqlite(path)) => embedded_key(path),
            (_, Database::Postgres(_)) => err(
                "KEY_ENCRYPTION_KEY is not set: private keys are stored encrypted with it; generate one with `head -c 32 /dev/urandom | base64` and keep it safe",
            ),
        }
    }
}

impl StoreArgs {
    /// The embedded store at `path`; the settings of PostgreSQL's servers have no meaning there.
    fn embedded(&self, path: PathBuf) -> Result<Database, ConfigError> {
        let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
        if set(&self.database_listen_url) || set(&self.database_read_url) {
            return err(
                "DATABASE_LISTEN_URL and DATABASE_READ_URL name PostgreSQL servers: set DATABASE_URL to postgres://... too, or unset them for the embedded store",
            );
        }
        if Pooler::parse(&self.database_pooler) != Some(Pooler::None) {
            return err(
                "DATABASE_POOLER is for PostgreSQL behind a pooler: set DATABASE_URL to postgres://... too, or unset it for the embedded store",
            );
        }
        Ok(Database::Sqlite(path))
    }
}

/// A PostgreSQL URL of `variable`. The parse error may quote the URL, password included: it is
/// reported without the details.
fn postgres_options(variable: &str, url: &str) -> Result<PgConnectOptions, ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return err(format!(
            "{variable} must be a PostgreSQL URL (postgres://user:password@host:port/database)"
        ));
    }
    PgConnectOptions::from_str(url).or_else(|_| {
        err(format!(
            "{variable} is not a valid PostgreSQL URL (postgres://user:password@host:port/database)"
        ))
    })
}

/// The embedded store's key-encryption key, from the file next to the database. A new database
/// gets a new key file (mode 0600); an existing database whose key file is gone is an error, never
/// a new key, since its keys are sealed with the lost one.
fn embedded_key(database: &Path) -> Result<(KeyEncryptionKey, Option<NewKeyFile>), ConfigError> {
    let file = database.with_file_name(KEY_FILE_NAME);
    match std::fs::read_to_string(&file) {
        Ok(text) => KeyEncryptionKey::from_base64(&text).map(|key| (key, None)).map_err(|e| {
            ConfigError(format!(
                "the key-encryption key in {} {e}; restore the file the database's keys were sealed with, or set KEY_ENCRYPTION_KEY",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if database.exists() {
                return err(format!(
                    "the embedded database {} exists but its key-encryption key {} is missing; restore the file, or set KEY_ENCRYPTION_KEY to the key its keys were sealed with",
                    database.display(),
                    file.display()
                ));
            }
            let (key, text) = KeyEncryptionKey::generate_base64();
            Ok((key, Some(NewKeyFile { path: file, text })))
        }
        Err(e) => err(format!(
            "cannot read the key-encryption key {}: {e}; make its folder one the service can read and write, or set DATABASE_URL=sqlite://<path> to keep the store elsewhere",
            file.display()
        )),
    }
}

/// A new embedded store's key-encryption key, still to be written to its file (mode 0600) before
/// the store is created: `serve` writes it only once it holds its addresses, so that a start
/// that fails leaves no `./data` behind.
#[derive(Clone)]
pub struct NewKeyFile {
    path: PathBuf,
    text: SecretString,
}

impl std::fmt::Debug for NewKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NewKeyFile {
    /// Writes the file (never over an existing one), creating its folder.
    pub fn write(&self) -> Result<(), ConfigError> {
        let file = &self.path;
        let failed = |e: std::io::Error| {
            ConfigError(format!(
                "cannot create the key-encryption key {}: {e}; make its folder writable, or set DATABASE_URL=sqlite://<path> to keep the store elsewhere",
                file.display()
            ))
        };
        if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::store::sqlite::create_private_folder(folder).map_err(failed)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(file).map_err(failed)?;
        out.write_all(self.text.expose_secret().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.sync_all())
            .map_err(failed)
    }
}

impl SettingsArgs {
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let database = self.store.database()?;
        let (listen_addr, public_url) = self.address.validate()?;
        let trusted_issuers = self
            .trusted_issuers
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                // An issuer is compared with `iss` as written: its trailing slash stays.
                parse_base_url("TRUSTED_ISSUERS", s).map(|(_, url)| (s.to_owned(), url))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !self.allow_insecure_issuers
            && let Some((issuer, _)) = trusted_issuers
                .iter()
                .find(|(_, url)| url.scheme() == "http" && !is_loopback(url))
        {
            return err(format!(
                "TRUSTED_ISSUERS entry {issuer:?} is plain http on a host that is not loopback: its keys, and with them any caller, could be replaced in transit; use https://, or set ALLOW_INSECURE_ISSUERS=true for an issuer on a network you trust"
            ));
        }
        let trusted_issuers: Vec<String> =
            trusted_issuers.into_iter().map(|(text, _)| text).collect();
        let issuer_policy = self.issuer_policy()?;
        if self.roles_claim.trim().is_empty() {
            return err(
                "ROLES_CLAIM is empty: name the claim that holds a caller's role ids (default: assignments)",
            );
        }
        let federation_issuers = self
            .federation_issuers
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (_, url) = parse_base_url("FEDERATION_ISSUERS", s)?;
                if url.scheme() == "http" && !self.allow_insecure_issuers && !is_loopback(&url) {
                    return err(format!(
                        "FEDERATION_ISSUERS entry {s:?} is plain http on a host that is not loopback: its keys, and with them any workload, could be replaced in transit; use https://, or set ALLOW_INSECURE_ISSUERS=true"
                    ));
                }
                Ok(s.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let issuers_file = match &self.trusted_issuers_file {
            Some(path) => self.issuers_file(path)?,
            None => Vec::new(),
        };
        if let Some(twice) = issuers_file
            .iter()
            .find(|spec| trusted_issuers.contains(&spec.url))
        {
            return err(format!(
                "TRUSTED_ISSUERS_FILE and TRUSTED_ISSUERS both list {}: keep it in one of them (the file's entry holds its mapping)",
                twice.url
            ));
        }
        let authority = self.authority()?;
        let cors_allowed_origins = self
            .cors_allowed_origins
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|origin| {
                let (_, url) = parse_base_url("CORS_ALLOWED_ORIGINS", origin)?;
                if url.path() != "/" || !url.username().is_empty() || url.password().is_some() {
                    return err(format!(
                        "CORS_ALLOWED_ORIGINS entry {origin:?} is not an origin: use scheme://host[:port] without a path"
                    ));
                }
                // As a browser sends it: the host in lower case, no default port.
                HeaderValue::from_str(&url.origin().ascii_serialization()).or_else(|_| err(format!("CORS_ALLOWED_ORIGINS entry {origin:?} is not valid")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ui_oidc = self.ui_oidc(&trusted_issuers, &issuers_file)?;
        let ui_frame_ancestors = self
            .ui_frame_ancestors
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|origin| {
                let (_, url) = parse_base_url("UI_FRAME_ANCESTORS", origin)?;
                if url.path() != "/" || !url.username().is_empty() || url.password().is_some() {
                    return err(format!(
                        "UI_FRAME_ANCESTORS entry {origin:?} is not an origin: use scheme://host[:port] without a path"
                    ));
                }
                Ok(url.origin().ascii_serialization())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let introspection_clients = self
            .introspection_clients
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(IntrospectionClient::parse)
            .collect::<Result<_, _>>()?;
        let status_list_ttl = self.status_list_ttl;
        if status_list_ttl.is_zero() {
            return err(
                "STATUS_LIST_TTL is 0: name at least one second (default 60), the time verifiers may cache a status list",
            );
        }
        let shutdown_drain = self.shutdown_drain;
        let request_timeout = self.request_timeout;
        if request_timeout < Duration::from_secs(1) {
            return err(
                "REQUEST_TIMEOUT is under a second: name at least 1s (default 30s), the longest a request may take",
            );
        }
        let mut database = database;
        if let Database::Postgres(pg) = &mut database {
            pg.statement_timeout = Some(request_timeout);
        }
        let metrics_addr = self.metrics_addr.0;
        // On a new embedded store the key file is written by `serve`, once it holds its addresses.
        let (key_encryption_key, new_key_file) = self.store.key_and_new_file(&database)?;
        Ok(Settings {
            database,
            http: HttpSettings {
                listen_addr,
                public_url,
                metrics_addr,
                cors_allowed_origins,
                ui_frame_ancestors,
                header_read_timeout: HEADER_READ_TIMEOUT,
                shutdown_drain,
                request_timeout,
            },
            trusted_issuers,
            issuers_file,
            allow_insecure_issuers: self.allow_insecure_issuers,
            issuer_policy,
            roles_claim: self.roles_claim.trim().to_owned(),
            authority,
            rotation_max_overlap: self.rotation_max_overlap,
            federation_issuers,
            key_encryption_key,
            new_key_file,
            introspection_clients,
            status_list_ttl,
            intervals: Intervals::DEFAULT,
            rate_limits: RateLimitSettings {
                create_per_org: self.rate_limit_create_per_org,
                create_per_caller: self.rate_limit_create_per_caller,
                change_per_org: self.rate_limit_change_per_org,
                change_per_caller: self.rate_limit_change_per_caller,
                failed_auth_per_address: self.rate_limit_failed_auth_per_address,
                failed_introspection_per_client: self.rate_limit_failed_introspection_per_client,
                revoke_per_address: self.rate_limit_revoke_per_address,
            },
            ui_oidc,
            secret_scanning_github: if self.secret_scanning_github {
                let url = self.secret_scanning_github_keys_url.trim();
                let parsed = url::Url::parse(url).map_err(|e| {
                    ConfigError(format!(
                        "SECRET_SCANNING_GITHUB_KEYS_URL {url:?} is not a URL: {e}"
                    ))
                })?;
                if parsed.scheme() != "https"
                    && !(parsed.scheme() == "http" && is_loopback(&parsed))
                {
                    return err(format!(
                        "SECRET_SCANNING_GITHUB_KEYS_URL {url:?} must be https:// (http:// only on a loopback host): the keys decide which alerts revoke tokens"
                    ));
                }
                Some(url.to_owned())
            } else {
                None
            },
            webhooks: WebhookSettings {
                allow_private: self.webhook_allow_private,
                allow_insecure: self.webhook_allow_insecure,
                timeout: if self.webhook_timeout.is_zero() {
                    return err(
                        "WEBHOOK_TIMEOUT is 0: give receivers at least a second (default 10s)",
                    );
                } else {
                    self.webhook_timeout
                },
                expiry_warnings: crate::tokens::notice::ExpiryWarnings::parse(
                    &self.expiry_warning_days,
                )
                .map_err(|e| ConfigError(format!("EXPIRY_WARNING_DAYS: {e}")))?,
            },
        })
    }
}

impl SettingsArgs {
    /// The settings page's sign-in: its issuer must be a trusted one (its ID tokens are the
    /// callers), with a client id.
    fn ui_oidc(
        &self,
        trusted: &[String],
        file: &[IssuerSpec],
    ) -> Result<Option<UiOidcSettings>, ConfigError> {
        let issuer = match self.ui_oidc_issuer.as_deref().map(str::trim) {
            None | Some("") => return Ok(None),
            Some(issuer) => issuer.to_owned(),
        };
        if !trusted.contains(&issuer) && !file.iter().any(|spec| spec.url == issuer) {
            return err(format!(
                "UI_OIDC_ISSUER {issuer:?} is not a trusted issuer: the ID tokens it signs the page's users in with must be callers; list it in TRUSTED_ISSUERS or TRUSTED_ISSUERS_FILE, exactly as its tokens' iss"
            ));
        }
        let Some(client_id) = self
            .ui_oidc_client_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        else {
            return err(
                "UI_OIDC_ISSUER is set without UI_OIDC_CLIENT_ID: name the settings page's public client at the issuer",
            );
        };
        let redirect_uri = match self.ui_oidc_redirect_uri.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(uri) => {
                parse_base_url("UI_OIDC_REDIRECT_URI", uri)?;
                Some(uri.to_owned())
            }
        };
        Ok(Some(UiOidcSettings {
            issuer,
            client_id: client_id.to_owned(),
            redirect_uri,
            scope: self.ui_oidc_scope.trim().to_owned(),
        }))
    }

    /// The issuers of `TRUSTED_ISSUERS_FILE`; any mistake is one line naming the file, the issuer
    /// and the fix.
    fn issuers_file(&self, path: &Path) -> Result<Vec<IssuerSpec>, ConfigError> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "TRUSTED_ISSUERS_FILE {shown}: cannot be read ({e}): name a readable TOML file of [[issuer]] tables, or unset it"
            ))
        })?;
        let allow_insecure = self.allow_insecure_issuers;
        crate::issuers::mapping::parse_file(&text, |url| {
            let parsed = Url::parse(url).map_err(|e| e.to_string())?;
            if parsed.scheme() == "http" && !allow_insecure && !is_loopback(&parsed) {
                return Err("url is plain http on a host that is not loopback: its keys, and with them any caller, could be replaced in transit; use https://, or set ALLOW_INSECURE_ISSUERS=true for an issuer on a network you trust".into());
            }
            Ok(())
        })
        .map_err(|e| ConfigError(format!("TRUSTED_ISSUERS_FILE {shown}: {e}")))
    }

    fn issuer_policy(&self) -> Result<IssuerPolicy, ConfigError> {
        let audiences: Vec<String> = listed(&self.trusted_audiences);
        let mut token_uses = listed(&self.trusted_token_use);
        if let Some(bad) = token_uses
            .iter()
            .find(|u| !crate::issuers::TOKEN_USES.contains(&u.as_str()))
        {
            return err(format!(
                "TRUSTED_TOKEN_USE entry {bad:?} is not a token_use: use id, access, or id,access"
            ));
        }
        if token_uses.is_empty() {
            token_uses = IssuerPolicy::default().token_uses;
        }
        let keys = KeysPolicy {
            default_ttl: self.issuer_keys_ttl,
            min_ttl: self.issuer_keys_ttl_min,
            max_ttl: self.issuer_keys_ttl_max,
            grace: self.issuer_keys_grace,
        };
        if keys.min_ttl.is_zero() {
            return err(
                "ISSUER_KEYS_TTL_MIN is 0: name at least one second (default 30s), or an issuer's max-age=0 refetches its keys on every request",
            );
        }
        if keys.min_ttl > keys.max_ttl {
            return err(format!(
                "ISSUER_KEYS_TTL_MIN ({}) is longer than ISSUER_KEYS_TTL_MAX ({}): make the minimum the shorter",
                seconds(keys.min_ttl),
                seconds(keys.max_ttl)
            ));
        }
        Ok(IssuerPolicy {
            audiences,
            token_uses,
            keys,
        })
    }
}

impl SettingsArgs {
    fn authority(&self) -> Result<Authority, ConfigError> {
        let slugs = |name: &str, values: &[String]| -> Result<Vec<String>, ConfigError> {
            let slugs = listed(values);
            if let Some(bad) = slugs.iter().find(|s| s.contains(':') || s.contains(' ')) {
                return err(format!(
                    "{name} entry {bad:?} is not a role slug: name the part of a role id after the organization (owner for 123:owner)"
                ));
            }
            Ok(slugs)
        };
        let admin_roles = slugs("TOKEN_ADMIN_ROLES", &self.token_admin_roles)?;
        if admin_roles.is_empty() {
            return err(
                "TOKEN_ADMIN_ROLES is empty: name at least one role slug whose holders manage all of their organization's tokens (default: owner,admin)",
            );
        }
        let create_roles = slugs("TOKEN_CREATE_ROLES", &self.token_create_roles)?;
        let mut impersonation_roles = slugs("IMPERSONATION_ROLES", &self.impersonation_roles)?;
        if impersonation_roles.is_empty() {
            impersonation_roles = admin_roles.clone();
        }
        Ok(Authority {
            admin_roles,
            create_roles: (!create_roles.is_empty()).then_some(create_roles),
            impersonation_roles,
        })
    }
}

/// `METRICS_ADDR`: an address to bind, or empty for no metrics listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

impl MetricsAddr {
    /// The value parser: host:port, or empty (or blank) for none.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(None));
        }
        text.parse().map(|addr| Self(Some(addr))).map_err(|_| {
            format!(
                "not an address: use host:port, e.g. {DEFAULT_METRICS_ADDR}, or set it empty to turn metrics off"
            )
        })
    }
}

/// The non-empty, trimmed entries of a comma-separated setting.
fn listed(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest duration a setting takes: a week.
const MAX_SETTING_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The value parser of every duration setting: whole seconds, or a number followed by `s`, `m`
/// or `h`; at most a week. (The variable's name is added where the error is shown:
/// [`setting_error`].)
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if scale > 0 && n.saturating_mul(scale) <= MAX_SETTING_DURATION.as_secs() => {
            Ok(Duration::from_secs(n * scale))
        }
        _ => Err(
            "not a duration of at most a week: use seconds, or a number with s, m, h or d, e.g. 90, 30s, 10m, 1h, 7d"
                .to_owned(),
        ),
    }
}

/// `duration` as a setting is written back in an error: `90s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

/// Whether `url`'s host is a loopback host: 127.0.0.0/8, `[::1]` or `localhost`, as the URL
/// parser that the HTTP client also uses reads the host (in `http://127.0.0.1@evil.example` the
/// host is `evil.example`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An absolute http(s) URL with a host and without query or fragment, parsed (`url::Url`), and
/// as written without its trailing slash.
fn parse_base_url(variable: &str, text: &str) -> Result<(String, Url), ConfigError> {
    let text = text.trim();
    let refused = || {
        err(format!(
            "{variable} entry {text:?} is not an absolute http(s) URL such as https://example.com"
        ))
    };
    if text.contains(char::is_whitespace) {
        return refused();
    }
    match Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.has_host()
                && url.query().is_none()
                && url.fragment().is_none()
                && !text.contains(['?', '#']) =>
        {
            Ok((text.trim_end_matches('/').to_owned(), url))
        }
        _ => refused(),
    }
}

/// A setting's value refused by its parser, said the way every other settings error is: the
/// environment variable first (which is how most deployments set it), then the flag, the value
/// and the rule. `None` for any other command-line error, which clap says well itself.
pub fn setting_error(error: &clap::Error, command: &clap::Command) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let variable = env_of(command, long)?;
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.clone(),
        _ => String::new(),
    };
    let why = match (
        std::error::Error::source(error),
        error.get(ContextKind::ValidValue),
    ) {
        (Some(source), _) => source.to_string(),
        (None, Some(ContextValue::Strings(valid))) => format!("use one of {}", valid.join(", ")),
        _ => "not a valid value".to_owned(),
    };
    Some(format!("{variable}={value:?} (--{long}): {why}"))
}

fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    /// docs/configuration.md's table, `.env.example` and the command line name the same
    /// settings: one added to one of them and not the others fails here. `RUST_LOG` and
    /// `LOG_FORMAT` are read by the logging, before the command line.
    #[test]
    fn configuration_table_names_every_setting() {
        use clap::CommandFactory;
        use std::collections::BTreeSet;
        // The workspace root, where docs/ and .env.example are.
        let root = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut flags: BTreeSet<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        flags.extend(["RUST_LOG".to_owned(), "LOG_FORMAT".to_owned()]);

        let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let table: BTreeSet<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split(" |").next())
            .flat_map(|cell| cell.split(", ").map(|n| n.trim_matches('`').to_owned()))
            .collect();
        assert_eq!(
            table, flags,
            "docs/configuration.md against the command line"
        );

        let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
        let listed: BTreeSet<String> = example
            .lines()
            .map(|l| l.trim_start_matches("# "))
            .filter_map(|l| l.split_once('='))
            .map(|(name, _)| name.to_owned())
            .filter(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
            .collect();
        assert_eq!(listed, flags, ".env.example against the command line");
    }

    const DB: &str = "postgres://postgres@127.0.0.1/db";
    const KEK: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn with_store(database_url: Option<&str>, kek: Option<&str>) -> SettingsArgs {
        let mut a = args(&[]);
        a.store.database_url = database_url.map(str::to_owned);
        a.store.key_encryption_key = kek.map(str::to_owned);
        a
    }

    /// Why these flags are refused: by their value parser (said as `main` says it), or else by
    /// `validate`.
    fn refused(extra: &[&str]) -> String {
        use clap::CommandFactory;
        let mut argv = vec!["x", "--database-url", DB, "--key-encryption-key", KEK];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv) {
            Err(error) => setting_error(&error, &Cli::command()).expect("a setting's error"),
            Ok(cli) => cli.settings.validate().unwrap_err().0,
        }
    }

    fn args(extra: &[&str]) -> SettingsArgs {
        let mut argv = vec!["x", "--database-url", DB, "--key-encryption-key", KEK];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().settings
    }

    #[test]
    fn defaults_derive_the_public_url_from_the_listen_address() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.http.public_url, None);
        assert_eq!(s.http.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.roles_claim, "assignments");
        let s = args(&[
            "--public-url",
            "https://tokens.example.com/",
            "--trusted-issuers",
            "https://a.example/pool, https://b.example/",
        ])
        .validate()
        .unwrap();
        assert_eq!(
            s.http.public_url.as_deref(),
            Some("https://tokens.example.com")
        );
        assert_eq!(
            s.trusted_issuers,
            ["https://a.example/pool", "https://b.example/"],
            "an issuer is its tokens' iss exactly, trailing slash included"
        );
    }

    #[test]
    fn authority_roles_are_slugs_with_defaults() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.authority, Authority::default());
        let s = args(&[
            "--token-admin-roles",
            "token_admin, owner",
            "--token-create-roles",
            "ci",
        ])
        .validate()
        .unwrap();
        assert_eq!(s.authority.admin_roles, ["token_admin", "owner"]);
        assert_eq!(s.authority.create_roles, Some(vec!["ci".to_owned()]));
        // Unset, impersonation follows the admin roles.
        assert_eq!(s.authority.impersonation_roles, ["token_admin", "owner"]);
        for (flag, value) in [
            ("--token-admin-roles", "1:owner"),
            ("--token-admin-roles", ","),
            ("--token-create-roles", "a b"),
            ("--impersonation-roles", "2:support"),
        ] {
            let error = refused(&[flag, value]);
            let variable = flag
                .trim_start_matches("--")
                .replace('-', "_")
                .to_uppercase();
            assert!(error.contains(&variable), "{flag} {value}: {error}");
        }
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let cases: [(SettingsArgs, &str); 6] = [
            (with_store(Some("sqlite://"), Some(KEK)), "DATABASE_URL"),
            (with_store(Some("mysql://x"), Some(KEK)), "DATABASE_URL"),
            (with_store(Some(DB), None), "KEY_ENCRYPTION_KEY"),
            (with_store(Some(DB), Some("c2hvcnQ=")), "KEY_ENCRYPTION_KEY"),
            (args(&["--listen-addr", "localhost"]), "LISTEN_ADDR"),
            (args(&["--public-url", "tokens.example.com"]), "PUBLIC_URL"),
        ];
        for (a, variable) in cases {
            let e = a.validate().unwrap_err();
            assert!(e.0.starts_with(variable), "{e}");
        }
        let e = refused(&["--introspection-clients", "gateway:short"]);
        assert!(e.contains("INTROSPECTION_CLIENTS"), "{e}");
        let ok = args(&[
            "--introspection-clients",
            "gateway:0123456789abcdef,other:fedcba9876543210",
        ])
        .validate()
        .unwrap();
        assert_eq!(ok.introspection_clients.len(), 2);
        assert!(!format!("{:?}", ok.introspection_clients).contains("0123456789abcdef"));
        let origins = args(&[
            "--cors-allowed-origins",
            "https://App.Example.com:443, http://localhost:3000/",
        ])
        .validate()
        .unwrap();
        assert_eq!(
            origins.http.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"],
            "as a browser sends its Origin"
        );
        for bad in [
            "https://a.example/path",
            "https://user@a.example",
            "ftp://a.example",
        ] {
            let e = refused(&["--cors-allowed-origins", bad]);
            assert!(e.contains("CORS_ALLOWED_ORIGINS"), "{e}");
        }
        let e = refused(&["--cors-allowed-origins", "https://a.example/path"]);
        assert!(e.contains("CORS_ALLOWED_ORIGINS"), "{e}");
    }

    #[test]
    fn metrics_listen_on_loopback_unless_turned_off_and_a_bad_address_names_the_variable() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.http.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        let s = args(&["--metrics-addr", "0.0.0.0:9100"])
            .validate()
            .unwrap();
        assert_eq!(s.http.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        for off in ["", " "] {
            let s = args(&["--metrics-addr", off]).validate().unwrap();
            assert_eq!(s.http.metrics_addr, None, "{off:?}");
        }
        for bad in ["9464", "localhost:9464", "127.0.0.1", "127.0.0.1:99999"] {
            let e = refused(&["--metrics-addr", bad]);
            assert!(e.starts_with("METRICS_ADDR"), "{bad}: {e}");
            assert!(e.contains("empty to turn metrics off"), "{bad}: {e}");
        }
    }

    #[test]
    fn plain_http_issuers_are_refused_unless_loopback_or_allowed() {
        for loopback in [
            "http://127.0.0.1:9000",
            "http://127.8.9.10/pool",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://[::1]:8080/",
            "https://cognito-idp.eu-central-1.amazonaws.com/pool",
        ] {
            let s = args(&["--trusted-issuers", loopback]).validate();
            assert!(s.is_ok(), "{loopback}: {s:?}");
        }
        for remote in [
            "http://issuer.example",
            "http://10.0.0.1:8080",
            "http://127.0.0.1@evil.example",
            "http://localhost.evil.example",
            "http://[::2]:80",
            "http://128.0.0.1",
        ] {
            let e = refused(&["--trusted-issuers", &format!("https://ok.example,{remote}")]);
            assert!(
                e.starts_with("TRUSTED_ISSUERS") && e.contains("ALLOW_INSECURE_ISSUERS=true"),
                "{remote}: {e}"
            );
            let allowed = args(&[
                "--trusted-issuers",
                remote,
                "--allow-insecure-issuers",
                "true",
            ])
            .validate()
            .unwrap();
            assert_eq!(allowed.trusted_issuers, [remote]);
        }
    }

    #[test]
    fn the_settings_pages_sign_in_needs_a_trusted_issuer_and_a_client() {
        let e = refused(&["--ui-oidc-issuer", "https://sso.example.com"]);
        assert!(
            e.starts_with("UI_OIDC_ISSUER") && e.contains("TRUSTED_ISSUERS"),
            "{e}"
        );
        let e = refused(&[
            "--trusted-issuers",
            "https://sso.example.com",
            "--ui-oidc-issuer",
            "https://sso.example.com",
        ]);
        assert!(e.contains("UI_OIDC_CLIENT_ID"), "{e}");
        let s = args(&[
            "--trusted-issuers",
            "https://sso.example.com",
            "--ui-oidc-issuer",
            "https://sso.example.com",
            "--ui-oidc-client-id",
            "page",
        ])
        .validate()
        .unwrap();
        let oidc = s.ui_oidc.unwrap();
        assert_eq!(oidc.client_id, "page");
        assert_eq!(oidc.scope, "openid email profile");
        assert_eq!(oidc.redirect_uri, None);
        assert!(args(&[]).validate().unwrap().ui_oidc.is_none());
    }

    #[test]
    fn status_list_ttl_defaults_to_a_minute_and_is_at_least_a_second() {
        assert_eq!(
            args(&[]).validate().unwrap().status_list_ttl,
            Duration::from_secs(60)
        );
        assert_eq!(
            args(&["--status-list-ttl", "5m"])
                .validate()
                .unwrap()
                .status_list_ttl,
            Duration::from_secs(300)
        );
        for bad in ["0", "soon", "8d"] {
            let error = refused(&["--status-list-ttl", bad]);
            assert!(error.contains("STATUS_LIST_TTL"), "{error}");
        }
    }

    #[test]
    fn request_timeout_defaults_to_30_s_bounds_postgres_statements_and_is_at_least_a_second() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.http.request_timeout, Duration::from_secs(30));
        match s.database {
            Database::Postgres(pg) => {
                assert_eq!(pg.statement_timeout, Some(Duration::from_secs(30)))
            }
            Database::Sqlite(_) => panic!("DB names PostgreSQL"),
        }
        let s = args(&["--request-timeout", "5s"]).validate().unwrap();
        assert_eq!(s.http.request_timeout, Duration::from_secs(5));
        for bad in ["0", "soon"] {
            let e = refused(&["--request-timeout", bad]);
            assert!(e.starts_with("REQUEST_TIMEOUT"), "{bad}: {e}");
        }
    }

    #[test]
    fn shutdown_drain_defaults_to_none_and_takes_a_duration() {
        assert_eq!(
            args(&[]).validate().unwrap().http.shutdown_drain,
            Duration::ZERO
        );
        let drain = args(&["--shutdown-drain", "2s"]).validate().unwrap();
        assert_eq!(drain.http.shutdown_drain, Duration::from_secs(2));
        let error = refused(&["--shutdown-drain", "soon"]);
        assert!(error.contains("SHUTDOWN_DRAIN"), "{error}");
    }

    #[test]
    fn issuer_policy_settings_are_parsed_and_checked() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.issuer_policy, IssuerPolicy::default());
        assert_eq!(s.issuer_policy.token_uses, ["id", "access"]);
        let s = args(&[
            "--trusted-audiences",
            " portal-client, ,cli ",
            "--trusted-token-use",
            "id",
            "--issuer-keys-ttl",
            "90",
            "--issuer-keys-ttl-min",
            "1s",
            "--issuer-keys-ttl-max",
            "2h",
            "--issuer-keys-grace",
            "15m",
        ])
        .validate()
        .unwrap();
        let p = s.issuer_policy;
        assert_eq!(p.audiences, ["portal-client", "cli"]);
        assert_eq!(p.token_uses, ["id"]);
        assert_eq!(
            [
                p.keys.default_ttl,
                p.keys.min_ttl,
                p.keys.max_ttl,
                p.keys.grace
            ],
            [90, 1, 7200, 900].map(Duration::from_secs)
        );
        let cases: [(&[&str], &str); 6] = [
            (&["--trusted-token-use", "id,refresh"], "TRUSTED_TOKEN_USE"),
            (&["--issuer-keys-ttl", "10 minutes"], "ISSUER_KEYS_TTL"),
            (&["--issuer-keys-grace=-1"], "ISSUER_KEYS_GRACE"),
            (&["--issuer-keys-ttl-max", "8d"], "ISSUER_KEYS_TTL_MAX"),
            (&["--issuer-keys-ttl-min", "0"], "ISSUER_KEYS_TTL_MIN"),
            (
                &["--issuer-keys-ttl-min", "2h", "--issuer-keys-ttl-max", "1h"],
                "ISSUER_KEYS_TTL_MIN",
            ),
        ];
        for (extra, variable) in cases {
            let e = refused(extra);
            assert!(e.starts_with(variable), "{extra:?}: {e}");
        }
    }

    #[test]
    fn the_store_is_embedded_unless_database_url_names_postgres() {
        let embedded = |url: Option<&str>| match with_store(url, None).store.database() {
            Ok(Database::Sqlite(path)) => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(embedded(None), PathBuf::from(DEFAULT_SQLITE_PATH));
        assert_eq!(embedded(Some(" ")), PathBuf::from(DEFAULT_SQLITE_PATH));
        assert_eq!(embedded(Some("sqlite://d/t.db")), PathBuf::from("d/t.db"));
        assert_eq!(
            embedded(Some("sqlite:///tmp/t.db")),
            PathBuf::from("/tmp/t.db")
        );
        assert!(matches!(
            with_store(Some(DB), None).store.database(),
            Ok(Database::Postgres(_))
        ));
    }

    #[test]
    fn postgres_servers_for_sessions_reads_and_behind_a_pooler() {
        let database = |extra: &[&str]| args(extra).validate().map(|s| s.database);
        // Nothing set: one server for everything, statements cached.
        let Ok(Database::Postgres(pg)) = database(&[]) else {
            panic!("DATABASE_URL names PostgreSQL")
        };
        assert_eq!(pg.pooler, Pooler::None);
        assert!(pg.session.is_none() && pg.read.is_none());
        assert_eq!(pg.session_options().get_port(), 5432);

        // DATABASE_URL (port 5432) is the pooler here.
        let Ok(Database::Postgres(pg)) = database(&[
            "--database-pooler",
            "Transaction",
            "--database-listen-url",
            "postgres://postgres@127.0.0.1:5433/db",
            "--database-read-url",
            "postgres://postgres@127.0.0.1:5434/db",
        ]) else {
            panic!("a pooler, a session server and a standby")
        };
        assert_eq!(pg.pooler, Pooler::Transaction);
        assert_eq!(pg.options.get_port(), 5432);
        assert_eq!(pg.session_options().get_port(), 5433);
        assert_eq!(pg.read.as_ref().map(|r| r.get_port()), Some(5434));
        // An empty value is unset, as for DATABASE_URL.
        let Ok(Database::Postgres(pg)) =
            database(&["--database-read-url", " ", "--database-pooler", "none"])
        else {
            panic!("empty values")
        };
        assert!(pg.read.is_none());

        let refused = [
            (
                &["--database-pooler", "statement"][..],
                "DATABASE_POOLER \"statement\" is not a pooling mode",
            ),
            // LISTEN through a transaction pooler would hear nothing: a session server is required.
            (
                &["--database-pooler", "transaction"][..],
                "DATABASE_POOLER=transaction needs DATABASE_LISTEN_URL",
            ),
            (
                &["--database-read-url", "mysql://x/db"][..],
                "DATABASE_READ_URL must be a PostgreSQL URL",
            ),
            (
                &["--database-listen-url", "postgres://u:secret@h:notaport/db"][..],
                "DATABASE_LISTEN_URL is not a valid PostgreSQL URL",
            ),
        ];
        for (extra, message) in refused {
            let e = database(extra).unwrap_err();
            assert!(e.0.starts_with(message), "{extra:?}: {e}");
            assert!(!e.0.contains("secret"), "{e}");
        }
        // They name PostgreSQL servers: the embedded store refuses them.
        for extra in [
            &["--database-read-url", "postgres://h/db"][..],
            &["--database-listen-url", "postgres://h/db"][..],
            &["--database-pooler", "transaction"][..],
        ] {
            let mut a = args(extra);
            a.store.database_url = Some("sqlite://d/t.db".to_owned());
            let e = a.store.database().unwrap_err();
            assert!(e.0.starts_with("DATABASE_"), "{extra:?}: {e}");
        }
    }

    #[test]
    fn the_embedded_key_file_is_made_with_a_new_database_and_never_replaced() {
        let folder = std::env::temp_dir().join(format!("at-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let database = Database::Sqlite(folder.join("nested/t.db"));
        let store = with_store(None, None).store;
        let first = store.key_encryption_key(&database).unwrap();
        let file = folder.join("nested").join(KEY_FILE_NAME);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The same key on the next start: sealed keys still open.
        let again = store.key_encryption_key(&database).unwrap();
        let sealed = first.seal(b"private", "api:kid").unwrap();
        assert!(again.open(&sealed, "api:kid").is_ok());
        // A database whose key file is gone gets an error, not a new key.
        std::fs::write(folder.join("nested/t.db"), b"").unwrap();
        std::fs::remove_file(&file).unwrap();
        let e = store.key_encryption_key(&database).unwrap_err();
        assert!(
            e.0.contains("missing") && e.0.contains(KEY_FILE_NAME),
            "{e}"
        );
        assert!(!file.exists());
        // A key file of the wrong length stops start-up and stays as it is.
        std::fs::write(&file, "c2hvcnQ=\n").unwrap();
        let e = store.key_encryption_key(&database).unwrap_err();
        assert!(e.0.contains("32"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "c2hvcnQ=\n");
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
