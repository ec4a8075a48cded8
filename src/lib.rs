//! `access-tokens`: creates, scopes to roles, lists and revokes long-lived RS256 JWTs whose claims
//! are compatible with AWS Cognito tokens, stores their records in PostgreSQL (or, for a first run,
//! an embedded SQLite file), and publishes its signing keys at JWKS endpoints so that verifiers can
//! check the tokens offline.

//!
//! The floors, each importing only those below it (docs/architecture.md): `http` (routes,
//! extractors, pagination) over `service` (the use cases) over `keys` (the key ring) and
//! `issuers`, over three crates of the workspace: the store (`store`, both databases), the
//! domain (`tokens`) and the JOSE crate (JWS, JWKs, the status-list codec); `config`, `error`,
//! `telemetry`, `rate_limit` and `metrics` serve the floors of this crate.

pub mod config;
pub mod error;
pub mod http;
pub mod issuers;
pub mod keys;
pub mod metrics;
pub mod rate_limit;
pub mod service;
/// The store is its own crate; named `store` here, the floor it was.
pub use access_tokens_store as store;
pub mod telemetry;
/// The domain is its own crate; named `tokens` here, the floor it was.
pub use access_tokens_domain as tokens;

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
        issuers::refuse_own_issuers(&settings.trusted_issuers, &public_url)?;
        // Only now, with both addresses held: a start that cannot bind creates no store.
        if let Some(file) = &settings.new_key_file {
            file.write()?;
        }
        let store = Store::open(&settings.database, Purpose::Service).await?;
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
            &settings.trusted_issuers,
            store.metrics(),
        ));
        let state = AppState::new(Service::new(settings, store, keys, metrics));
        // Served from the first request on; should this fail, the background work renders them
        // within a second and the lists answer 503 until then.
        if let Err(error) = state.status_lists.refresh(true).await {
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
        self.state.public_url()
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
            tokio::spawn(async move { state.maintain().await })
        };
        let revocations = {
            let state = state.clone();
            tokio::spawn(async move { state.follow_other_replicas().await })
        };
        let header_read_timeout = state.settings.http.header_read_timeout;
        let request_timeout = state.settings.http.request_timeout;
        let shutdown = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.begin_stopping();
                let drain = state.settings.http.shutdown_drain;
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
            let router = http::metrics::router(state.metrics.clone());
            tokio::spawn(http::server::serve(
                listener,
                router,
                header_read_timeout,
                std::future::pending(),
                request_timeout,
            ))
        });
        let router = http::router(self.state);
        let served = http::server::serve(
            self.listener,
            router,
            header_read_timeout,
            shutdown,
            request_timeout,
        )
        .await;
        background.abort();
        revocations.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // The pool's connections are returned, the last marks written, within a bound: a
        // connection held by a statement still waiting in the database (a lock) must not keep
        // the process alive.
        if tokio::time::timeout(CLOSE_TIMEOUT, state.close())
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

#[cfg(test)]
mod floors {
    use std::path::Path;

    /// Each floor and the floors below it, which its files may name. The domain (`tokens`) and
    /// the store are crates of their own, which Cargo keeps from naming anything above them.
    const FLOORS: [(&str, &[&str]); 4] = [
        ("keys", &["store", "tokens"]),
        ("issuers", &["keys", "store", "tokens"]),
        ("service", &["keys", "issuers", "store", "tokens"]),
        ("http", &["service", "keys", "issuers", "tokens"]),
    ];

    /// May a file of `floor` name `module`? Its own floor, the floors below it and the error type;
    /// the metrics' handles above the domain; the settings, rate limits and telemetry from the use
    /// cases up.
    fn may_name(floor: &str, below: &[&str], module: &str) -> bool {
        module == floor
            || below.contains(&module)
            || module == "error"
            || module == "metrics"
            || (matches!(module, "config" | "rate_limit" | "telemetry")
                && matches!(floor, "service" | "http"))
    }

    /// The crate's modules that `text` names as `crate::<module>`.
    fn named_modules(text: &str) -> Vec<&str> {
        text.match_indices("crate::")
            .map(|(at, prefix)| {
                let rest = &text[at + prefix.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    #[test]
    fn every_floor_imports_only_the_floors_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (floor, below) in FLOORS {
            let files = std::fs::read_dir(src.join(floor)).expect("the floor's folder");
            for file in files {
                let path = file.expect("a file of the floor").path();
                let text = std::fs::read_to_string(&path).expect("a source file");
                for module in named_modules(&text) {
                    assert!(
                        may_name(floor, below, module),
                        "{} names crate::{module}, which is not below the {floor} floor",
                        path.display()
                    );
                }
            }
        }
    }
}
