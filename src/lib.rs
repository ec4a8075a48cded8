//! `access-tokens`: creates, scopes to roles, lists and revokes long-lived RS256 JWTs whose claims
//! are compatible with AWS Cognito tokens, stores their records in PostgreSQL (or, for a first run,
//! an embedded SQLite file), and publishes its signing keys at JWKS endpoints so that verifiers can
//! check the tokens offline.

//!
//! This crate is the binary's: a thin HTTP layer (`http`: extract, call the service, render),
//! the error mapping (`error`), telemetry, and the process (`App`: bind, serve, stop). Below it,
//! crates of the workspace that Cargo keeps from naming anything above them
//! (docs/architecture.md): the service (`access_tokens_service`: the use cases, keys, issuers,
//! rate limits, metrics, settings), the store, the domain and the JOSE crate.

pub mod error;
pub mod http;
pub mod telemetry;

/// The use cases' crate.
pub use access_tokens_service as service;
/// The crates below, under the names their floors had in this crate.
pub use access_tokens_service::{config, issuers, keys, metrics, rate_limit, store, tokens};

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use config::Settings;
use http::AppState;
use keys::KeyRing;
use service::Service;
use store::{Purpose, Store};

/// Why the service could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("cannot listen on {0}: {1} (set LISTEN_ADDR to a free address)")]
    Bind(SocketAddr, std::io::Error),
    #[error(
        "cannot listen for metrics on {0}: {1} (set METRICS_ADDR to a free address, or empty to turn metrics off)"
    )]
    MetricsBind(SocketAddr, std::io::Error),
    #[error(transparent)]
    OwnIssuer(#[from] issuers::OwnIssuer),
    #[error(transparent)]
    KeyFile(#[from] config::ConfigError),
}

/// How long a stopping replica waits for its store to close (the last `last_used` marks, the
/// pool's connections) before it exits anyway.
pub const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A service bound to its address, with migrations applied and keys loaded.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    /// The metrics listener and its address, unless metrics are off.
    metrics: Option<(TcpListener, SocketAddr)>,
    state: AppState,
}

impl App {
    /// Migrates the database, loads (or creates) the signing keys and binds `listen_addr`
    /// (port 0 picks a free port; see `address`).
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let listener = TcpListener::bind(settings.http.listen_addr)
            .await
            .map_err(|e| StartError::Bind(settings.http.listen_addr, e))?;
        let address = listener
            .local_addr()
            .map_err(|e| StartError::Bind(settings.http.listen_addr, e))?;
        let metrics_listener = match settings.http.metrics_addr {
            Some(addr) => {
                let bound = TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartError::MetricsBind(addr, e))?;
                let local = bound
                    .local_addr()
                    .map_err(|e| StartError::MetricsBind(addr, e))?;
                Some((bound, local))
            }
            None => None,
        };
        let public_url = settings.public_url_for(address);
        let trusted = settings.issuer_specs();
        let trusted_urls: Vec<String> = trusted.iter().map(|spec| spec.url.clone()).collect();
        issuers::refuse_own_issuers(&trusted_urls, &public_url)?;
        // Only now, with both addresses held: a start that cannot bind creates no store.
        if let Some(file) = &settings.new_key_file {
            file.write()?;
        }
        let store = Store::open(&settings.database, Purpose::Service).await?;
        log_trust(&settings, &trusted);
        if let store::Database::Sqlite(path) = &settings.database {
            tracing::warn!(
                database = %path.display(),
                "running on the embedded development store; for production set \
                 DATABASE_URL=postgres://user:password@host/database and KEY_ENCRYPTION_KEY"
            );
        }
        let keys =
            KeyRing::load_or_create(&store, &settings.key_encryption_key, &public_url).await?;
        let operations: Vec<(String, String)> = http::routes()
            .operations()
            .iter()
            .map(|(method, path)| (method.to_string(), path.clone()))
            .collect();
        let token_types = tokens::TokenType::ALL.map(tokens::TokenType::as_str);
        let metrics = Arc::new(metrics::Metrics::new(
            &operations,
            &token_types,
            &trusted_urls,
            store.metrics(),
        ));
        let state = AppState::new(Service::new(settings, store, keys, metrics));
        // Served from the first request on; should this fail, the background work renders them
        // within a second and the lists answer 503 until then.
        if let Err(error) = state.service().render_status_lists().await {
            tracing::warn!(%error, "could not render the status lists at start-up");
        }
        Ok(Self {
            listener,
            address,
            metrics: metrics_listener,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The address the metrics listener is bound to; `None` when metrics are off.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    /// The URL issuers and `jwks_uri`s derive from.
    pub fn public_url(&self) -> &str {
        self.state.service().public_url()
    }

    /// Serves until `shutdown` completes; then answers readiness checks with 503 while it goes on
    /// serving for `SHUTDOWN_DRAIN`, stops accepting, finishes the requests in flight, writes the
    /// last `last_used` marks and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let background = {
            let state = state.clone();
            tokio::spawn(async move { state.service().maintain().await })
        };
        let revocations = {
            let state = state.clone();
            tokio::spawn(async move { state.service().follow_other_replicas().await })
        };
        let webhooks = {
            let state = state.clone();
            tokio::spawn(async move { state.service().run_webhooks().await })
        };
        let header_read_timeout = state.service().http_settings().header_read_timeout;
        let request_timeout = state.service().http_settings().request_timeout;
        let shutdown = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.service().begin_stopping();
                let drain = state.service().http_settings().shutdown_drain;
                if !drain.is_zero() {
                    tracing::info!(
                        drain_seconds = drain.as_secs_f64(),
                        "stopping: readiness answers 503 while requests are still served"
                    );
                    tokio::time::sleep(drain).await;
                }
            }
        };
        // Scraped until the service stops; nothing of it needs draining.
        let metrics = self.metrics.map(|(listener, address)| {
            tracing::info!(%address, "serving metrics at /metrics");
            let router = http::metrics::router(state.service().metrics().clone());
            tokio::spawn(http::server::serve(
                listener,
                router,
                header_read_timeout,
                std::future::pending(),
                request_timeout,
            ))
        });
        let served = http::server::serve(
            self.listener,
            http::Public::new(self.state),
            header_read_timeout,
            shutdown,
            request_timeout,
        )
        .await;
        background.abort();
        revocations.abort();
        webhooks.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // The pool's connections are returned, the last marks written, within a bound: a
        // connection held by a statement still waiting in the database (a lock) must not keep
        // the process alive.
        if tokio::time::timeout(CLOSE_TIMEOUT, state.service().close())
            .await
            .is_err()
        {
            tracing::warn!(
                "the store did not close within {CLOSE_TIMEOUT:?}; stopping without waiting for it"
            );
        }
        served
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// The service's effective trust, once at start-up: each trusted issuer with its mapping, whether
/// introspection is on, and a warning when nothing could call the management API.
fn log_trust(settings: &Settings, trusted: &[issuers::IssuerSpec]) {
    for spec in trusted {
        let from = if settings.trusted_issuers.contains(&spec.url) {
            "TRUSTED_ISSUERS"
        } else {
            "TRUSTED_ISSUERS_FILE"
        };
        tracing::info!(
            issuer = spec.url,
            from,
            mapping = spec.mapping.describe(),
            "trusting issuer"
        );
        if from == "TRUSTED_ISSUERS" && spec.mapping.audiences.is_empty() {
            tracing::warn!(
                issuer = spec.url,
                "TRUSTED_AUDIENCES is not set: tokens of any app client of this issuer may call; set it to the app client ids of the portal"
            );
        }
    }
    let clients = settings.introspection_clients.len();
    tracing::info!(
        introspection = if clients == 0 { "off" } else { "on" },
        clients,
        "token introspection"
    );
    if trusted.is_empty() && matches!(settings.database, store::Database::Postgres(_)) {
        tracing::warn!(
            "no trusted issuer: nothing can call the management API but tokens of this service, and none can be created without one; set TRUSTED_ISSUERS or TRUSTED_ISSUERS_FILE, or create a first token with `access-tokens dev-token`"
        );
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
