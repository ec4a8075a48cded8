//! `TestApp`: the real service bound on port 0 against a fresh database of the store under test
//! (`store()`, from `TEST_STORE`: a PostgreSQL database, or an embedded SQLite file), plus a trusted issuer of
//! its own (a small HTTP server publishing a JWKS) to mint callers with.
//!
//! On PostgreSQL two variables change where the service's connections go (`scripts/scale/test-database.sh`
//! sets both): `TEST_PGBOUNCER_URL`, a PgBouncer in transaction mode in front of the test server
//! (its wildcard database reaching every test database): the service's pool goes through it
//! (`DATABASE_POOLER=transaction`), its listener and migrations go direct. `TEST_STANDBY_URL`, a
//! streaming standby of the test server: the service's reads go to it (`DATABASE_READ_URL`).
//! The tests' own SQL always goes direct to the test server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use access_tokens::App;
use access_tokens::config::{Database, PgDatabase, Pooler, Settings};
use access_tokens::keys::jwks::PublicJwk;
use access_tokens::keys::{KeyEncryptionKey, SigningKey};
use access_tokens::store::{Purpose, Store};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use axum::routing::get;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The PostgreSQL server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Which store the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Postgres,
    Sqlite,
}

/// The store under test: `TEST_STORE` (`postgres`, the default, or `sqlite`).
pub fn store() -> StoreKind {
    static STORE: OnceLock<StoreKind> = OnceLock::new();
    *STORE.get_or_init(|| match std::env::var("TEST_STORE").as_deref() {
        Err(_) | Ok("" | "postgres") => StoreKind::Postgres,
        Ok("sqlite") => StoreKind::Sqlite,
        Ok(other) => panic!("TEST_STORE is `postgres` or `sqlite`, not `{other}`"),
    })
}

/// Whether the store under test is `needed`; when it is not, says that the calling test is
/// skipped (a test of one store's own behaviour returns at once on the other).
pub fn runs_on(needed: StoreKind) -> bool {
    let runs = store() == needed;
    if !runs {
        eprintln!(
            "skipped: this test needs TEST_STORE={needed:?}, not {:?}",
            store()
        );
    }
    runs
}

/// The URL of `database` (the service's pool's), as an operator passes it to the binary.
pub fn database_url(database: &Database) -> String {
    match database {
        Database::Postgres(pg) => url_of(&pg.options),
        Database::Sqlite(path) => format!("sqlite://{}", path.display()),
    }
}

fn url_of(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}?sslmode=disable",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    )
}

/// The variables that name `database` to the binary: DATABASE_URL, and on PostgreSQL
/// DATABASE_LISTEN_URL, DATABASE_READ_URL and DATABASE_POOLER when the test mode sets them.
pub fn database_env(database: &Database) -> Vec<(&'static str, String)> {
    let mut env = vec![("DATABASE_URL", database_url(database))];
    if let Database::Postgres(pg) = database {
        if let Some(session) = &pg.session {
            env.push(("DATABASE_LISTEN_URL", url_of(session)));
        }
        if let Some(read) = &pg.read {
            env.push(("DATABASE_READ_URL", url_of(read)));
        }
        if pg.pooler == Pooler::Transaction {
            env.push(("DATABASE_POOLER", "transaction".to_owned()));
        }
    }
    env
}

/// The test server itself, whatever the service's pool goes through: for the tests' own SQL.
pub fn direct_options(database: &Database) -> PgConnectOptions {
    match database {
        Database::Postgres(pg) => pg.session_options().clone(),
        Database::Sqlite(_) => panic!("a PostgreSQL test ran on the embedded store"),
    }
}

/// `TEST_PGBOUNCER_URL` or `TEST_STANDBY_URL`, when set: a server URL whose database is replaced.
fn test_server(variable: &str) -> Option<PgConnectOptions> {
    let url = std::env::var(variable)
        .ok()
        .filter(|u| !u.trim().is_empty())?;
    Some(
        PgConnectOptions::from_str(&url)
            .unwrap_or_else(|_| panic!("{variable} is a PostgreSQL URL")),
    )
}

/// The standby of the test server (`TEST_STANDBY_URL`), when one is given.
pub fn standby_options() -> Option<PgConnectOptions> {
    test_server("TEST_STANDBY_URL")
}

/// The PostgreSQL servers a test app uses for database `direct` of the test server, as the test
/// mode says (see the module's comment).
pub fn test_postgres(direct: PgConnectOptions) -> PgDatabase {
    let name = direct.get_database().unwrap().to_owned();
    let mut pg = PgDatabase::direct(direct.clone());
    if let Some(bouncer) = test_server("TEST_PGBOUNCER_URL") {
        pg.options = bouncer.database(&name);
        pg.session = Some(direct);
        pg.pooler = Pooler::Transaction;
    }
    pg.read = standby_options().map(|standby| standby.database(&name));
    pg
}

pub fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL is a PostgreSQL URL")
}

/// `at_test_` and 16 random hex digits: the test script sweeps what carries the prefix.
fn test_name() -> String {
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).unwrap();
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    format!("at_test_{hex}")
}

/// A new, empty database of the store under test.
pub async fn fresh_database() -> Database {
    match store() {
        StoreKind::Postgres => {
            Database::Postgres(Box::new(test_postgres(fresh_postgres_database().await)))
        }
        StoreKind::Sqlite => Database::Sqlite(fresh_folder().join("access-tokens.db")),
    }
}

/// A new, empty folder under the target directory.
pub fn fresh_folder() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test_name());
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// A new, empty PostgreSQL database.
pub async fn fresh_postgres_database() -> PgConnectOptions {
    let admin = admin_options();
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .expect("PostgreSQL answers at TEST_DATABASE_URL (run the tests with scripts/test.sh)");
    let name = test_name();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    admin.database(&name)
}

/// The public JWK of issuer key `index` (key 0 is trusted; key 1 is published by nobody).
fn issuer_jwk(index: usize) -> Value {
    static JWKS: OnceLock<Vec<Value>> = OnceLock::new();
    JWKS.get_or_init(|| {
        (0..2)
            .map(|i| {
                let der = issuer_pkcs8(i);
                let pair = KeyPair::from_pkcs8(&der).unwrap();
                let jwk = PublicJwk::from_key_pair(&pair);
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": jwk.thumbprint(), "n": jwk.n, "e": jwk.e})
            })
            .collect()
    })[index]
        .clone()
}

/// Two RSA keys per test process, as PKCS#8.
fn issuer_pkcs8(index: usize) -> Vec<u8> {
    static DER: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    DER.get_or_init(|| {
        (0..2)
            .map(|_| {
                let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            })
            .collect()
    })[index]
        .clone()
}

/// A signer for issuer key `index`, with the kid the issuer publishes.
pub fn issuer_signer(index: usize) -> SigningKey {
    let pair = KeyPair::from_pkcs8(&issuer_pkcs8(index)).unwrap();
    let kid = PublicJwk::from_key_pair(&pair).thumbprint();
    SigningKey::new(kid, pair)
}

/// A trusted issuer: serves `/.well-known/jwks.json` with key 0 and counts fetches. While `slow`
/// is set, a fetch of its JWKS takes a minute.
pub struct TestIssuer {
    pub url: String,
    pub fetches: Arc<AtomicUsize>,
    pub slow: Arc<AtomicBool>,
    signer: SigningKey,
}

impl TestIssuer {
    /// An issuer URL that nothing serves, for apps that need no caller.
    pub fn url_only() -> String {
        "http://127.0.0.1:9".to_owned()
    }

    pub async fn spawn() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let slow = Arc::new(AtomicBool::new(false));
        let (counter, is_slow) = (fetches.clone(), slow.clone());
        let jwks = json!({ "keys": [issuer_jwk(0)] });
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                let slow = is_slow.load(Ordering::SeqCst);
                async move {
                    if slow {
                        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    }
                    axum::Json(jwks)
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            fetches,
            slow,
            signer: issuer_signer(0),
        }
    }

    /// A token of this issuer's URL signed by a key it does not publish (an unknown `kid`).
    pub fn token_of_unpublished_key(&self, org: &str, user: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        issuer_signer(1)
            .sign(&json!({
                "iss": self.url, "sub": user, "iat": now, "exp": now + 3600, "token_use": "id",
                "custom:ivy_org_id": org, "custom:ivy_user_id": user, "assignments": [format!("{org}:owner")],
            }))
            .unwrap()
    }

    /// A signed token of this issuer with the given claims (`iss`, `iat`, `exp` added when absent).
    pub fn token(&self, mut claims: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let obj = claims.as_object_mut().unwrap();
        obj.entry("iss").or_insert(json!(self.url));
        obj.entry("iat").or_insert(json!(now));
        obj.entry("exp").or_insert(json!(now + 3600));
        obj.entry("token_use").or_insert(json!("id"));
        self.signer.sign(&claims).unwrap()
    }

    /// A Cognito-style ID token of a user of `org` holding `roles`.
    pub fn user(&self, org: &str, user: &str, roles: &[&str]) -> String {
        self.token(json!({
            "sub": format!("sub-{user}"),
            "custom:ivy_org_id": org,
            "custom:ivy_user_id": user,
            "cognito:username": format!("{user}@example.com"),
            "email": format!("{user}@example.com"),
            "email_verified": true,
            "assignments": roles,
        }))
    }
}

pub struct TestApp {
    pub base: String,
    /// `http://` and the metrics listener's address, when metrics are on.
    pub metrics_base: Option<String>,
    pub public_url: String,
    pub client: reqwest::Client,
    pub issuer: TestIssuer,
    pub database: Database,
    pub kek: KeyEncryptionKey,
    shutdown: Option<oneshot::Sender<()>>,
    pub stopped: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The key-encryption key of test apps (one per process), in the form operators pass it.
pub fn test_kek_base64() -> String {
    static KEK: OnceLock<String> = OnceLock::new();
    KEK.get_or_init(|| {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    })
    .clone()
}

pub const USER_AGENT: &str = "access-tokens-tests/1";
pub const INTROSPECTION_CLIENT: &str = "gateway";
pub const INTROSPECTION_SECRET: &str = "gateway-secret-0123456789";

pub fn settings(database: Database, kek: KeyEncryptionKey, issuers: Vec<String>) -> Settings {
    Settings {
        database,
        http: access_tokens::config::HttpSettings {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            // On, as in production: every test's requests pass through the counting layer.
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            cors_allowed_origins: vec!["https://portal.example.com".parse().unwrap()],
            ui_frame_ancestors: vec!["https://portal.example.com".to_owned()],
            header_read_timeout: access_tokens::config::HEADER_READ_TIMEOUT,
            request_timeout: std::time::Duration::from_secs(30),
            shutdown_drain: std::time::Duration::ZERO,
        },
        trusted_issuers: issuers,
        issuers_file: Vec::new(),
        allow_insecure_issuers: false,
        issuer_policy: access_tokens::config::IssuerPolicy::default(),
        roles_claim: "assignments".to_owned(),
        authority: access_tokens::config::Authority::default(),
        rotation_max_overlap: std::time::Duration::from_secs(7 * 86_400),
        federation_issuers: Vec::new(),
        key_encryption_key: kek,
        new_key_file: None,
        introspection_clients: vec![
            access_tokens::config::IntrospectionClient::parse(&format!(
                "{INTROSPECTION_CLIENT}:{INTROSPECTION_SECRET}"
            ))
            .unwrap(),
        ],
        status_list_ttl: std::time::Duration::from_secs(60),
        // Short, so that tests see background work promptly.
        intervals: access_tokens::config::Intervals {
            usage_flush: std::time::Duration::from_millis(100),
            key_refresh: std::time::Duration::from_millis(100),
            status_list_refresh: std::time::Duration::from_millis(100),
            webhook_poll: std::time::Duration::from_millis(100),
            expiry_scan: std::time::Duration::from_millis(200),
            retire_rotated: std::time::Duration::from_millis(100),
        },
        // Off, so that tests creating many tokens are not throttled; `rate_limits.rs` sets them.
        rate_limits: access_tokens::config::RateLimitSettings::OFF,
        secret_scanning_github: None,
        ui_oidc: None,
        // Receivers started by the tests listen on loopback, over plain http.
        webhooks: access_tokens::config::WebhookSettings {
            allow_private: true,
            allow_insecure: true,
            ..Default::default()
        },
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings changed by `customize` (a fresh database and KEK are already set).
    pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            use access_tokens::telemetry::{LogFormat, Output, init};
            let format = std::env::var("LOG_FORMAT").unwrap_or_default();
            init(
                Output::Stdout,
                LogFormat::parse(&format).expect("LOG_FORMAT is json, pretty or unset"),
            );
        }
        let issuer = TestIssuer::spawn().await;
        let database = fresh_database().await;
        let kek = KeyEncryptionKey::from_base64(&test_kek_base64()).unwrap();
        let mut settings = settings(database.clone(), kek.clone(), vec![issuer.url.clone()]);
        customize(&mut settings);
        Self::start(settings, issuer).await
    }

    /// Starts another instance on the same database, key-encryption key and public URL, as a
    /// second replica behind the same load balancer would be.
    pub async fn replica(&self) -> Self {
        self.replica_with(|_| {}).await
    }

    /// A second replica ([`TestApp::replica`]) where the store is shared between processes
    /// (PostgreSQL); `None` on the embedded store, whose database belongs to one process.
    pub async fn another_replica(&self) -> Option<Self> {
        self.another_replica_with(|_| {}).await
    }

    /// [`TestApp::another_replica`] with settings changed by `customize`.
    pub async fn another_replica_with(
        &self,
        customize: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        match store() {
            StoreKind::Postgres => Some(self.replica_with(customize).await),
            StoreKind::Sqlite => None,
        }
    }

    /// [`TestApp::replica`] with settings changed by `customize`.
    pub async fn replica_with(&self, customize: impl FnOnce(&mut Settings)) -> Self {
        let issuer = TestIssuer::spawn().await;
        let mut settings = settings(
            self.database.clone(),
            self.kek.clone(),
            vec![issuer.url.clone()],
        );
        settings.http.public_url = Some(self.public_url.clone());
        customize(&mut settings);
        Self::start(settings, issuer).await
    }

    async fn start(settings: Settings, issuer: TestIssuer) -> Self {
        let database = settings.database.clone();
        let kek = settings.key_encryption_key.clone();
        let app = App::build(settings).await.expect("the app starts");
        let base = format!("http://{}", app.address());
        let metrics_base = app.metrics_address().map(|a| format!("http://{a}"));
        let public_url = app.public_url().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let stopped = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            base,
            metrics_base,
            public_url,
            client: reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .build()
                .unwrap(),
            issuer,
            database,
            kek,
            shutdown: Some(tx),
            stopped: Some(stopped),
        }
    }

    /// Signals shutdown; the server finishes requests in flight.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The service's key ring as stored in its database (to sign tokens the service would sign).
    pub async fn key_ring(&self) -> access_tokens::keys::KeyRing {
        access_tokens::keys::KeyRing::load_or_create(
            &self.store().await,
            &self.kek,
            &self.public_url,
        )
        .await
        .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A caller of organization `org` holding `roles` (user `u-<org>`).
    pub fn caller(&self, org: &str, roles: &[&str]) -> String {
        self.issuer.user(org, &format!("u-{org}"), roles)
    }

    /// The default caller: organization 1, owner and viewer.
    pub fn owner(&self) -> String {
        self.caller("1", &["1:owner", "1:viewer"])
    }

    pub async fn create(&self, bearer: &str, body: Value) -> Response {
        self.client
            .post(self.url("/v1/access-tokens"))
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a token and returns the 201 body (panics on any other status).
    pub async fn create_ok(&self, bearer: &str, body: Value) -> Value {
        let response = self.create(bearer, body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn list(&self, bearer: &str, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1/access-tokens{query}")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn list_ok(&self, bearer: &str, query: &str) -> Vec<Value> {
        let response = self.list(bearer, query).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Organization 1's tokens (revoked ones included: their ids, sorted) and how many audit
    /// events it has, as its owner (an admin) sees them: what a denial must leave as it was.
    pub async fn written(&self) -> (Vec<String>, usize) {
        let tokens = self.list_ok(&self.owner(), "?status=all&limit=1000").await;
        let mut ids: Vec<String> = tokens
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let events = self.audit_events(&self.owner(), "?limit=1000").await;
        (ids, events.len())
    }

    /// Replaces organization 1's policy as its owner (an admin); returns the answer.
    pub async fn set_policy(&self, body: Value) -> Value {
        let response = self
            .client
            .put(self.url("/v1/access-tokens/policy"))
            .bearer_auth(self.owner())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// A page of the organization's audit events (`query` as the URL's, e.g. `?limit=2`).
    pub async fn audit_events(&self, bearer: &str, query: &str) -> Vec<Value> {
        let response = self
            .client
            .get(self.url(&format!("/v1/access-tokens/audit-events{query}")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn revoke(&self, bearer: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/v1/access-tokens/{id}")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    /// The app's store, opened as an operator command opens it.
    pub async fn store(&self) -> Store {
        Store::open(&self.database, Purpose::Command).await.unwrap()
    }

    /// A pool on the app's PostgreSQL database (direct), for tests of PostgreSQL itself.
    pub fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect_lazy_with(direct_options(&self.database))
    }

    /// Runs one statement that reads the same on both stores.
    pub async fn execute(&self, sql: &'static str) {
        match self.store().await {
            Store::Postgres(_) => drop(sqlx::query(sql).execute(&self.pool()).await.unwrap()),
            Store::Sqlite(pool) => drop(sqlx::query(sql).execute(&pool).await.unwrap()),
        }
    }

    /// Runs one statement that reads the same on both stores (one text parameter).
    pub async fn execute_with(&self, sql: &'static str, bind: &str) {
        match self.store().await {
            Store::Postgres(_) => drop(
                sqlx::query(sql)
                    .bind(bind)
                    .execute(&self.pool())
                    .await
                    .unwrap(),
            ),
            Store::Sqlite(pool) => drop(sqlx::query(sql).bind(bind).execute(&pool).await.unwrap()),
        }
    }

    /// A count that reads the same on both stores (one text parameter).
    pub async fn count(&self, sql: &'static str, bind: &str) -> i64 {
        match self.store().await {
            Store::Postgres(_) => {
                sqlx::query_scalar(sql)
                    .bind(bind)
                    .fetch_one(&self.pool())
                    .await
            }
            Store::Sqlite(pool) => sqlx::query_scalar(sql).bind(bind).fetch_one(&pool).await,
        }
        .unwrap()
    }

    /// (kid, state) of a key set's keys, oldest first.
    pub async fn key_states(&self, set: &str) -> Vec<(String, String)> {
        const SQL: &str =
            "select kid, state from signing_keys where key_set = $1 order by created_at, kid";
        match self.store().await {
            Store::Postgres(_) => sqlx::query_as(SQL).bind(set).fetch_all(&self.pool()).await,
            Store::Sqlite(pool) => sqlx::query_as(SQL).bind(set).fetch_all(&pool).await,
        }
        .unwrap()
    }

    /// The sealed private keys as stored.
    pub async fn sealed_keys(&self) -> Vec<Vec<u8>> {
        const SQL: &str = "select private_key_sealed from signing_keys";
        match self.store().await {
            Store::Postgres(_) => sqlx::query_scalar(SQL).fetch_all(&self.pool()).await,
            Store::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_all(&pool).await,
        }
        .unwrap()
    }

    /// Seeds `count` token rows of `org` straight into the table (three at a time share a
    /// creation time, to exercise the id tie-break), signed by the api set's active key, created
    /// one second apart from 2026-01-01.
    pub async fn seed(&self, org: &str, count: i64) {
        match self.store().await {
            Store::Postgres(_) => sqlx::query(
                "insert into access_tokens (id, org_id, created_by, owner, token_type, name, key_id, created_at)
                 select 'api_seed' || lpad(g::text, 16, '0') || $1, $1, 'seed', 'p1_seed', 'api', 'seeded ' || g,
                        (select kid from signing_keys where key_set = 'api' and state = 'active'),
                        timestamptz '2026-01-01' + (g / 3) * interval '1 second'
                 from generate_series(1, $2) g",
            )
            .bind(org)
            .bind(count)
            .execute(&self.pool())
            .await
            .map(drop),
            Store::Sqlite(pool) => sqlx::query(
                "with recursive g(n) as (select 1 union all select n + 1 from g where n < $2)
                 insert into access_tokens (id, org_id, created_by, owner, token_type, name, key_id, created_at)
                 select 'api_seed' || printf('%016d', n) || $1, $1, 'seed', 'p1_seed', 'api', 'seeded ' || n,
                        (select kid from signing_keys where key_set = 'api' and state = 'active'),
                        1767225600000000 + (n / 3) * 1000000
                 from g",
            )
            .bind(org)
            .bind(count)
            .execute(&pool)
            .await
            .map(drop),
        }
        .unwrap()
    }

    /// Moves a token's creation two hours back and its expiry to an hour ago.
    pub async fn expire(&self, id: &str) {
        match self.store().await {
            Store::Postgres(_) => sqlx::query(
                "update access_tokens set created_at = created_at - interval '2 hours',
                     expires_at = now() - interval '1 hour' where id = $1",
            )
            .bind(id)
            .execute(&self.pool())
            .await
            .map(drop),
            Store::Sqlite(pool) => sqlx::query(
                "update access_tokens set created_at = created_at - 7200000000,
                     expires_at = $2 where id = $1",
            )
            .bind(id)
            .bind((chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_micros())
            .execute(&pool)
            .await
            .map(drop),
        }
        .unwrap()
    }

    /// Introspects `token` as the configured client does, with a form body; returns the answer.
    pub async fn introspect(&self, token: &str) -> Value {
        let response = self
            .client
            .post(self.url("/v1/access-tokens/introspect"))
            .basic_auth(INTROSPECTION_CLIENT, Some(INTROSPECTION_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", urlencode(token)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    pub async fn get_token(&self, bearer: &str, id: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1/access-tokens/{id}")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn rotate(&self, bearer: &str, id: &str) -> Response {
        self.client
            .post(self.url(&format!("/v1/access-tokens/{id}/rotate")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    /// Follows `Link: rel="next"` from `first` (a path with query) and returns every page.
    pub async fn pages(&self, bearer: &str, first: &str) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut next = Some(self.url(first));
        while let Some(url) = next {
            let response = self
                .client
                .get(&url)
                .bearer_auth(bearer)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            next = next_link(&response).map(|u| u.replace(&self.public_url, &self.base));
            pages.push(response.json().await.unwrap());
        }
        pages
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The JWKS a verifier fetches for key set `prefix` ("" for api, "/public", ...).
    pub async fn jwks(&self, prefix: &str) -> Value {
        self.get(&format!("/v1/access-tokens{prefix}/.well-known/jwks.json"))
            .await
            .json()
            .await
            .unwrap()
    }

    /// Verifies `jwt` as an independent verifier would: discovery document, then JWKS, then
    /// `jsonwebtoken` with a key built from the published `n` and `e`. Returns the claims.
    pub async fn verify(&self, prefix: &str, jwt: &str) -> Result<Value, String> {
        let discovery: Value = self
            .get(&format!(
                "/v1/access-tokens{prefix}/.well-known/openid-configuration"
            ))
            .await
            .json()
            .await
            .unwrap();
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
        let path = jwks_uri.strip_prefix(&self.public_url).unwrap();
        let jwks: Value = self.get(path).await.json().await.unwrap();
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .ok_or("kid not in the JWKS")?;
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
        validation.set_required_spec_claims(&["iss", "sub"]);
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL of `Link: <...>; rel="next"`, if the response has one.
pub fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let (url, rel) = link.split_once(';')?;
    (rel.trim() == "rel=\"next\"").then(|| {
        url.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    })
}

/// Polls `check` until it holds or `seconds` pass.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asserts a contract error: status and a JSON body `{status, error}` with a non-empty message.
pub async fn assert_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    let message = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    message
}

/// A 429 with the contract's body and a `Retry-After` of at most a minute; returns the message.
pub async fn assert_throttled(response: Response) -> String {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("a {} without Retry-After", response.status()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS).await
}

/// The public JWK of issuer key `index` (0 or 1), as an issuer publishes it.
pub fn issuer_public_jwk(index: usize) -> Value {
    issuer_jwk(index)
}

/// A TCP forwarder on loopback to `target`, for a connection the test takes away: once
/// [`Forwarder::cut`], every connection through it is closed and new ones are refused.
pub struct Forwarder {
    pub port: u16,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Forwarder {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let connections = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().unwrap().push(connection);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, tasks }
    }

    /// Closes every connection through the forwarder and its listening socket.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.cut();
    }
}
