//! Every setting, from flags or environment variables, validated once at start-up. An error
//! names the variable and the fix.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;

use crate::keys::KeyEncryptionKey;

/// Where keys and records live: what every command that touches the store needs.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// PostgreSQL URL where token records and keys live (postgres://user@host/db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Base64 of 32 random bytes; private keys are stored encrypted with it.
    #[arg(long, env = "KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,
}

/// The settings as given on the command line or in the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to bind.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,
    /// The URL callers and verifiers reach the service at; issuers derive from it.
    /// Defaults to http://{LISTEN_ADDR}.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Comma-separated issuer URLs whose tokens may call the management API.
    #[arg(long, env = "TRUSTED_ISSUERS", value_delimiter = ',')]
    pub trusted_issuers: Vec<String>,
    /// Claim holding a caller's role ids.
    #[arg(long, env = "ROLES_CLAIM", default_value = "assignments")]
    pub roles_claim: String,
    /// Comma-separated origins allowed to call from a browser.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Comma-separated `client_id:secret` pairs that may call the introspection endpoint
    /// (HTTP Basic). Secrets are at least 16 characters.
    #[arg(
        long,
        env = "INTROSPECTION_CLIENTS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub introspection_clients: Vec<String>,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: PgConnectOptions,
    pub listen_addr: SocketAddr,
    /// Without a trailing slash; `None` derives it from the bound address (`http://{address}`).
    pub public_url: Option<String>,
    pub trusted_issuers: Vec<String>,
    pub roles_claim: String,
    pub key_encryption_key: KeyEncryptionKey,
    pub cors_allowed_origins: Vec<HeaderValue>,
    pub introspection_clients: Vec<IntrospectionClient>,
    /// How often `last_used` marks are written.
    pub usage_flush_interval: Duration,
    /// How often a replica checks the stored keys for rotations and revocations.
    pub key_refresh_interval: Duration,
}

/// Written at most this long after a token was first seen in use on a day.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Replicas switch to a rotated key, and stop accepting a revoked one, within this interval.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(2);
const MIN_CLIENT_SECRET_CHARS: usize = 16;

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
    /// Parses the database URL (for commands that need nothing else).
    pub fn database(&self) -> Result<PgConnectOptions, ConfigError> {
        let url = SecretString::from(self.database_url.clone().unwrap_or_default());
        let url = url.expose_secret().trim();
        if url.is_empty() {
            return err(
                "DATABASE_URL is not set: point it at PostgreSQL, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/access_tokens",
            );
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return err(
                "DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:port/database)",
            );
        }
        // The parse error may quote the URL, password included: report it without the details.
        PgConnectOptions::from_str(url).or_else(|_| {
            err("DATABASE_URL is not a valid PostgreSQL URL (postgres://user:password@host:port/database)")
        })
    }

    pub fn key_encryption_key(&self) -> Result<KeyEncryptionKey, ConfigError> {
        match self.key_encryption_key.as_deref().map(str::trim) {
            None | Some("") => err(
                "KEY_ENCRYPTION_KEY is not set: private keys are stored encrypted with it; generate one with `head -c 32 /dev/urandom | base64` and keep it safe",
            ),
            Some(text) => KeyEncryptionKey::from_base64(text)
                .map_err(|e| ConfigError(format!("KEY_ENCRYPTION_KEY {e}"))),
        }
    }
}

impl SettingsArgs {
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let database = self.store.database()?;
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
            Some(url) => Some(parse_base_url("PUBLIC_URL", url)?),
            None => None,
        };
        let trusted_issuers = self
            .trusted_issuers
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| parse_base_url("TRUSTED_ISSUERS", s))
            .collect::<Result<Vec<_>, _>>()?;
        if self.roles_claim.trim().is_empty() {
            return err(
                "ROLES_CLAIM is empty: name the claim that holds a caller's role ids (default: assignments)",
            );
        }
        let key_encryption_key = self.store.key_encryption_key()?;
        let cors_allowed_origins = self
            .cors_allowed_origins
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|origin| {
                let base = parse_base_url("CORS_ALLOWED_ORIGINS", origin)?;
                if base.matches('/').count() > 2 {
                    return err(format!(
                        "CORS_ALLOWED_ORIGINS entry {origin:?} is not an origin: use scheme://host[:port] without a path"
                    ));
                }
                HeaderValue::from_str(&base).or_else(|_| err(format!("CORS_ALLOWED_ORIGINS entry {origin:?} is not valid")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Settings {
            database,
            listen_addr,
            public_url,
            trusted_issuers,
            roles_claim: self.roles_claim.trim().to_owned(),
            key_encryption_key,
            cors_allowed_origins,
            introspection_clients: self
                .introspection_clients
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(IntrospectionClient::parse)
                .collect::<Result<_, _>>()?,
            usage_flush_interval: USAGE_FLUSH_INTERVAL,
            key_refresh_interval: KEY_REFRESH_INTERVAL,
        })
    }
}

/// An absolute http(s) URL without query or fragment, returned without its trailing slash.
fn parse_base_url(variable: &str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(['?', '#', ' ']) =>
        {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => err(format!(
            "{variable} entry {url:?} is not an absolute http(s) URL such as https://example.com"
        )),
    }
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

    const DB: &str = "postgres://postgres@127.0.0.1/db";
    const KEK: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn with_store(database_url: Option<&str>, kek: Option<&str>) -> SettingsArgs {
        let mut a = args(&[]);
        a.store = StoreArgs {
            database_url: database_url.map(str::to_owned),
            key_encryption_key: kek.map(str::to_owned),
        };
        a
    }

    fn args(extra: &[&str]) -> SettingsArgs {
        let mut argv = vec!["x", "--database-url", DB, "--key-encryption-key", KEK];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().settings
    }

    #[test]
    fn defaults_derive_the_public_url_from_the_listen_address() {
        let s = args(&[]).validate().unwrap();
        assert_eq!(s.public_url, None);
        assert_eq!(s.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.roles_claim, "assignments");
        let s = args(&[
            "--public-url",
            "https://tokens.example.com/",
            "--trusted-issuers",
            "https://a.example/pool, https://b.example/",
        ])
        .validate()
        .unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://tokens.example.com"));
        assert_eq!(
            s.trusted_issuers,
            ["https://a.example/pool", "https://b.example"]
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let cases: [(SettingsArgs, &str); 6] = [
            (with_store(None, Some(KEK)), "DATABASE_URL"),
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
        let e = args(&["--introspection-clients", "gateway:short"])
            .validate()
            .unwrap_err();
        assert!(e.0.contains("INTROSPECTION_CLIENTS"), "{e}");
        let ok = args(&[
            "--introspection-clients",
            "gateway:0123456789abcdef,other:fedcba9876543210",
        ])
        .validate()
        .unwrap();
        assert_eq!(ok.introspection_clients.len(), 2);
        assert!(!format!("{:?}", ok.introspection_clients).contains("0123456789abcdef"));
        let e = args(&["--cors-allowed-origins", "https://a.example/path"])
            .validate()
            .unwrap_err();
        assert!(e.0.contains("CORS_ALLOWED_ORIGINS"), "{e}");
    }
}
