//! Prometheus metrics: the registry of one replica, the handles that the floors count with, and
//! the text exposition served on the metrics listener (`METRICS_ADDR`, never the public port).
//!
//! Every family is named `access_tokens_*` (the process's own are the conventional `process_*`),
//! in base units, and no label takes a token id, user id, organization id or any other value a
//! client chooses: routes are the matched templates, reasons and results come from fixed lists,
//! issuers from the configured `TRUSTED_ISSUERS`.
//!
//! Counters are handles made once (a label set looked up per increment only where it is a failure
//! or a management call); state (signing keys, the pool, the process) is read when Prometheus
//! scrapes, from memory: no scrape queries the database. The HTTP layer ([`HttpMetrics`]) finds a
//! request's handles by its route template in a map built at start-up, so a request allocates
//! nothing for its metrics.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The label of requests that matched no route (404s of the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets, in seconds: from a served JWKS (well under a millisecond) to the
/// request timeout (30 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// Renders of a key set's status lists, in seconds: a few lists take milliseconds, a million
/// indices 25 ms, ten million about a quarter of a second (`docs/scaling.md`), a slow store more.
pub const RENDER_BUCKETS: [f64; 10] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A label value from a fixed list, written as its `&'static str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fixed(pub &'static str);

impl EncodeLabelValue for Fixed {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

/// One label whose value comes from a fixed list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(pub &'static str, pub Fixed);

impl EncodeLabelSet for Label {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelSetEncoder,
    ) -> Result<(), std::fmt::Error> {
        [(self.0, self.1)].encode(encoder)
    }
}

/// Why a caller was refused, from a fixed list: the caller extractor's reasons, grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    NoToken,
    /// Not a compact RS256 JWS with an issuer and a kid, claims that do not parse, no `exp`, too
    /// large.
    Malformed,
    BadSignature,
    UnknownKey,
    /// Past its `exp`, or before its `nbf`.
    Expired,
    UntrustedIssuer,
    /// Signed and current, but not a token that may call: its `token_use`, app client or type.
    NotAccepted,
    Revoked,
    Suspended,
    /// The client address failed too often and was turned away before any check.
    RateLimited,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 10] = [
        AuthFailure::NoToken,
        AuthFailure::Malformed,
        AuthFailure::BadSignature,
        AuthFailure::UnknownKey,
        AuthFailure::Expired,
        AuthFailure::UntrustedIssuer,
        AuthFailure::NotAccepted,
        AuthFailure::Revoked,
        AuthFailure::Suspended,
        AuthFailure::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::NoToken => "no_token",
            AuthFailure::Malformed => "malformed",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::Expired => "expired",
            AuthFailure::UntrustedIssuer => "untrusted_issuer",
            AuthFailure::NotAccepted => "not_accepted",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Suspended => "suspended",
            AuthFailure::RateLimited => "rate_limited",
        }
    }
}

/// What an introspection answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Active,
    Inactive,
    /// The client's credentials were missing or wrong, or it was rate limited: no answer.
    ClientRefused,
}

impl Introspection {
    pub const ALL: [Introspection; 3] = [
        Introspection::Active,
        Introspection::Inactive,
        Introspection::ClientRefused,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Introspection::Active => "active",
            Introspection::Inactive => "inactive",
            Introspection::ClientRefused => "client_refused",
        }
    }
}

/// A trusted issuer's JWKS fetches, by result: one pair of counters per configured issuer.
#[derive(Debug, Clone, Default)]
pub struct IssuerFetches {
    pub ok: Counter,
    pub failed: Counter,
}

/// What the store counts (waits for a connection, the size of each group of creations): the
/// store crate's handles, registered here with the others.
pub use crate::store::StoreMetrics;

/// What the status lists count: each render of a key set's lists (the statuses read, compressed,
/// signed) that succeeded, and the renders that failed (the lists in memory are served meanwhile).
#[derive(Debug, Clone)]
pub struct StatusListMetrics {
    pub render_seconds: Histogram,
    pub render_failures: Counter,
}

impl Default for StatusListMetrics {
    fn default() -> Self {
        Self {
            render_seconds: Histogram::new(RENDER_BUCKETS),
            render_failures: Counter::default(),
        }
    }
}

/// Lifecycle webhooks: deliveries by result, and the queue as the last worker loop read it.
#[derive(Debug)]
pub struct WebhookMetrics {
    deliveries: Family<Label, Counter>,
    /// Deliveries pending (due or waiting to be retried), across replicas.
    pub queue_depth: Gauge,
    /// How long the delivery due longest ago has waited for a worker, in seconds (0 when every
    /// pending delivery is claimed or waiting for its retry time).
    pub oldest_pending_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        let deliveries = Family::<Label, Counter>::default();
        for result in ["delivered", "retried", "failed"] {
            drop(deliveries.get_or_create(&Label("result", Fixed(result))));
        }
        Self {
            deliveries,
            queue_depth: Gauge::default(),
            oldest_pending_seconds: Gauge::default(),
        }
    }
}

impl WebhookMetrics {
    fn count(&self, result: &'static str) {
        self.deliveries
            .get_or_create(&Label("result", Fixed(result)))
            .inc();
    }
    /// An attempt answered 2xx.
    pub fn delivered(&self) {
        self.count("delivered");
    }
    /// An attempt failed; the delivery is tried again later.
    pub fn retried(&self) {
        self.count("retried");
    }
    /// An attempt failed a day after the event: the delivery is given up.
    pub fn failed(&self) {
        self.count("failed");
    }
}

/// The revocation feed's standing: whether the listener is connected, and the changes it saw.
#[derive(Debug, Clone, Default)]
pub struct RevocationMetrics {
    pub listener_up: Gauge,
    pub notifications: Counter,
}

/// The signing keys as the gauges show them: `(key set, state, count)` of the stored keys, and
/// `(key set, age in seconds)` of each set's active key.
#[derive(Debug, Default)]
pub struct KeyGauges {
    pub counts: Vec<(&'static str, &'static str, u64)>,
    pub active_ages: Vec<(&'static str, f64)>,
}

/// What gauges of state are read from at scrape time: the signing keys and the pool. Implemented
/// by the floors that hold them, so that this module imports none of them.
pub trait StateSource: Send + Sync + 'static {
    fn keys(&self) -> KeyGauges;
    /// `(connections open, idle, maximum)` of the database pool.
    fn pool(&self) -> (u32, u32, u32);
}

/// Registers each `name, help, handle;` of the list in `registry` (the handles are shared: the
/// registry gets a clone of each).
macro_rules! register {
    ($registry:expr, $($name:literal, $help:literal, $handle:expr;)*) => {
        $($registry.register($name, $help, $handle.clone());)*
    };
}

/// One replica's metrics: the handles counted with and the registry that renders them.
pub struct Metrics {
    registry: RwLock<Registry>,
    pub http: Arc<HttpMetrics>,
    tokens_created: Family<Label, Counter>,
    pub tokens_revoked: Counter,
    pub tokens_rotated: Counter,
    pub tokens_suspended: Counter,
    pub tokens_resumed: Counter,
    introspections: Family<Label, Counter>,
    auth_failures: Family<Label, Counter>,
    pub store: StoreMetrics,
    pub revocations: RevocationMetrics,
    pub status_lists: StatusListMetrics,
    pub webhooks: Arc<WebhookMetrics>,
    issuer_fetches: HashMap<String, IssuerFetches>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The families of a replica serving `routes` (method and template), trusting `issuers`, of
    /// which `token_types` may be created. Every label value of a fixed list is made now, so a
    /// scrape shows each series from the start (at 0), as rate() and alerts need.
    pub fn new(
        routes: &[(String, String)],
        token_types: &[&'static str],
        issuers: &[String],
        store: StoreMetrics,
    ) -> Self {
        let tokens_created = Family::<Label, Counter>::default();
        for t in token_types {
            drop(tokens_created.get_or_create(&Label("token_type", Fixed(t))));
        }
        let introspections = Family::<Label, Counter>::default();
        for r in Introspection::ALL {
            drop(introspections.get_or_create(&Label("result", Fixed(r.as_str()))));
        }
        let auth_failures = Family::<Label, Counter>::default();
        for r in AuthFailure::ALL {
            drop(auth_failures.get_or_create(&Label("reason", Fixed(r.as_str()))));
        }
        let issuer_fetches = issuers
            .iter()
            .map(|i| (i.clone(), IssuerFetches::default()))
            .collect();
        Self {
            registry: RwLock::new(Registry::default()),
            http: Arc::new(HttpMetrics::new(routes)),
            tokens_created,
            tokens_revoked: Counter::default(),
            tokens_rotated: Counter::default(),
            tokens_suspended: Counter::default(),
            tokens_resumed: Counter::default(),
            introspections,
            auth_failures,
            store,
            revocations: RevocationMetrics::default(),
            status_lists: StatusListMetrics::default(),
            webhooks: Arc::new(WebhookMetrics::default()),
            issuer_fetches,
        }
    }

    /// Registers every family, reading keys and pool from `state` at each scrape. Called once,
    /// when the replica is assembled.
    pub fn register(&self, state: Arc<dyn StateSource>) {
        let mut root = match self.registry.write() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        root.register_collector(Box::new(Process));
        let r = root.sub_registry_with_prefix("access_tokens");
        r.register_collector(Box::new(HttpCollector(self.http.clone())));
        // Name, help, handle: each family counted by a handle of its own.
        register!(r,
            "tokens_created", "Tokens created (and rotated in), by token type.", self.tokens_created;
            "tokens_revoked", "Tokens revoked, cascaded revocations included.", self.tokens_revoked;
            "tokens_rotated", "Tokens replaced by a new one (rotate).", self.tokens_rotated;
            "tokens_suspended", "Tokens suspended.", self.tokens_suspended;
            "tokens_resumed", "Suspended tokens resumed.", self.tokens_resumed;
            "introspections", "Introspection requests, by result: active, inactive, or client_refused (no answer given).", self.introspections;
            "auth_failures", "Callers of the management API refused, by reason.", self.auth_failures;
            "db_pool_acquire_duration_seconds", "Time waited for a database connection (PostgreSQL).", self.store.acquire_seconds;
            "db_pool_waiting_requests", "Requests waiting for a database connection at this moment (PostgreSQL).", self.store.waiting;
            "token_create_queued", "Token creations waiting for the writer at this moment, not yet in a statement (PostgreSQL).", self.store.queued;
            "token_create_group_size", "Token creations written by one statement (grouped writes on PostgreSQL).", self.store.group_sizes;
            "revocation_listener_up", "1 while the revocation listener is connected and its set loaded (PostgreSQL), else 0.", self.revocations.listener_up;
            "revocation_notifications", "Revocations, suspensions and resumptions announced by the revocation feed.", self.revocations.notifications;
            "status_list_render_duration_seconds", "Time to render a key set's status lists (statuses read, compressed, signed), each render that succeeded.", self.status_lists.render_seconds;
            "status_list_render_failures", "Renders of a key set's status lists that failed (the store did not answer); the lists in memory are served meanwhile.", self.status_lists.render_failures;
            "webhook_deliveries", "Webhook delivery attempts, by result: delivered (2xx), retried (failed, tried again later), failed (given up a day after the event).", self.webhooks.deliveries;
            "webhook_queue_depth", "Webhook deliveries pending (due or waiting for a retry), across replicas.", self.webhooks.queue_depth;
            "webhook_oldest_pending_seconds", "How long the webhook delivery due longest ago has waited for a worker, in seconds (retries waiting for their time are not due): grows while no replica delivers.", self.webhooks.oldest_pending_seconds;
        );
        r.register_collector(Box::new(IssuerCollector(
            self.issuer_fetches
                .iter()
                .map(|(issuer, fetches)| (issuer.clone(), fetches.clone()))
                .collect(),
        )));
        r.register_collector(Box::new(StateCollector(state)));
    }

    pub fn token_created(&self, token_type: &'static str) {
        self.tokens_created
            .get_or_create(&Label("token_type", Fixed(token_type)))
            .inc();
    }

    pub fn introspection(&self, result: Introspection) {
        self.introspections
            .get_or_create(&Label("result", Fixed(result.as_str())))
            .inc();
    }

    pub fn auth_failure(&self, reason: AuthFailure) {
        self.auth_failures
            .get_or_create(&Label("reason", Fixed(reason.as_str())))
            .inc();
    }

    /// The fetch counters of a configured issuer.
    pub fn issuer_fetches(&self, issuer: &str) -> IssuerFetches {
        self.issuer_fetches.get(issuer).cloned().unwrap_or_default()
    }

    /// The exposition, in the Prometheus text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let registry = match self.registry.read() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// Requests by route template, method and status, and latency by route.
///
/// The routes are known at start-up: each gets its handles then, and a request finds them by its
/// template with one lookup in a map that is never written again. Counters by method and status
/// are made on first use under a lock taken for writing only then.
pub struct HttpMetrics {
    /// Hashed with foldhash rather than SipHash: the keys are the fixed route templates, so there
    /// is no flooding to resist, and it is a third of the cost on every request.
    routes: HashMap<String, RouteMetrics, foldhash::fast::FixedState>,
    unmatched: RouteMetrics,
}

struct RouteMetrics {
    name: Arc<str>,
    duration: Histogram,
    /// (method, status) -> requests.
    requests: RwLock<Vec<(Fixed, u16, Counter)>>,
}

impl RouteMetrics {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            duration: Histogram::new(LATENCY_BUCKETS),
            requests: RwLock::default(),
        }
    }

    fn record(&self, method: Fixed, status: u16, latency: Duration) {
        self.duration.observe(latency.as_secs_f64());
        let found = |requests: &[(Fixed, u16, Counter)]| {
            requests
                .iter()
                .find(|(m, s, _)| *s == status && *m == method)
                .map(|(_, _, c)| c.inc())
                .is_some()
        };
        let seen = match self.requests.read() {
            Ok(requests) => found(&requests),
            Err(poisoned) => found(&poisoned.into_inner()),
        };
        if seen {
            return;
        }
        let mut requests = match self.requests.write() {
            Ok(requests) => requests,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !found(&requests) {
            let counter = Counter::default();
            counter.inc();
            requests.push((method, status, counter));
        }
    }
}

impl HttpMetrics {
    fn new(routes: &[(String, String)]) -> Self {
        let mut by_template = HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (_, template) in routes {
            by_template
                .entry(template.clone())
                .or_insert_with(|| RouteMetrics::new(template));
        }
        Self {
            routes: by_template,
            unmatched: RouteMetrics::new(UNMATCHED_ROUTE),
        }
    }

    /// Counts one request of `route` (the matched template; `None`: no route matched).
    pub fn record(&self, route: Option<&str>, method: &str, status: u16, latency: Duration) {
        let handles = route
            .and_then(|r| self.routes.get(r))
            .unwrap_or(&self.unmatched);
        handles.record(method_label(method), status, latency);
    }
}

/// The request's method when it is one the service knows of, else `other`: a client cannot grow
/// the label set with made-up methods.
fn method_label(method: &str) -> Fixed {
    Fixed(match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    })
}

#[derive(Debug)]
struct HttpCollector(Arc<HttpMetrics>);

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut routes: Vec<&RouteMetrics> = self.0.routes.values().collect();
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        routes.push(&self.0.unmatched);
        {
            let mut family = encoder.encode_descriptor(
                "http_requests",
                "HTTP requests answered, by route template, method and status.",
                None,
                MetricType::Counter,
            )?;
            for route in &routes {
                let requests = match route.requests.read() {
                    Ok(requests) => requests.clone(),
                    Err(poisoned) => poisoned.into_inner().clone(),
                };
                for (method, status, counter) in requests {
                    let status = status.to_string();
                    let labels = [
                        ("route", &*route.name),
                        ("method", method.0),
                        ("status", status.as_str()),
                    ];
                    counter.encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by route template.",
            None,
            MetricType::Histogram,
        )?;
        for route in &routes {
            let labels = [("route", &*route.name)];
            route.duration.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// JWKS fetches of the trusted issuers, by issuer and result.
#[derive(Debug)]
struct IssuerCollector(Vec<(String, IssuerFetches)>);

impl Collector for IssuerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "issuer_jwks_fetches",
            "Fetches of a trusted issuer's JWKS, by issuer and result (ok, error).",
            None,
            MetricType::Counter,
        )?;
        for (issuer, fetches) in &self.0 {
            for (result, counter) in [("ok", &fetches.ok), ("error", &fetches.failed)] {
                let labels = [("issuer", issuer.as_str()), ("result", result)];
                counter.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Signing keys and the pool, read from memory at each scrape.
struct StateCollector(Arc<dyn StateSource>);

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCollector").finish_non_exhaustive()
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let KeyGauges {
            counts: keys,
            active_ages: ages,
        } = self.0.keys();
        {
            let mut family = encoder.encode_descriptor(
                "signing_keys",
                "Stored signing keys, by key set and state (next, active, retired, revoked).",
                None,
                MetricType::Gauge,
            )?;
            for (set, state, count) in keys {
                let labels = [("key_set", set), ("state", state)];
                ConstGauge::new(count as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "signing_key_active_age_seconds",
                "Time since the active key of each key set became active.",
                None,
                MetricType::Gauge,
            )?;
            for (set, age) in ages {
                ConstGauge::new(age).encode(family.encode_family(&[("key_set", set)])?)?;
            }
        }
        let (size, idle, max) = self.0.pool();
        for (name, help, value) in [
            (
                "db_pool_connections",
                "Database connections open (in use and idle).",
                size,
            ),
            (
                "db_pool_idle_connections",
                "Database connections open and idle.",
                idle,
            ),
            (
                "db_pool_max_connections",
                "The most database connections the pool opens.",
                max,
            ),
        ] {
            gauge(&mut encoder, name, help, i64::from(value))?;
        }
        Ok(())
    }
}

/// One gauge of one value, without labels, as a collector writes it at a scrape.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// The process's resident memory, CPU time and file descriptors, read from `/proc/self` at each
/// scrape (Linux; elsewhere these families are left out).
#[derive(Debug)]
struct Process;

/// Clock ticks per second of `/proc/<pid>/stat`: Linux's USER_HZ, 100 on every architecture's
/// user-space ABI.
const USER_HZ: f64 = 100.0;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(seconds) = cpu_seconds() {
            ConstCounter::new(seconds).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds.",
                None,
                MetricType::Counter,
            )?)?;
        }
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|fds| fds.count() as u64);
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                resident_bytes(),
            ),
            ("process_open_fds", "Open file descriptors.", open_fds),
            (
                "process_max_fds",
                "The most file descriptors the process may open.",
                max_fds(),
            ),
        ] {
            if let Some(value) = value {
                gauge(&mut encoder, name, help, value as i64)?;
            }
        }
        Ok(())
    }
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Fields 3.. follow; utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoState;
    impl StateSource for NoState {
        fn keys(&self) -> KeyGauges {
            KeyGauges {
                counts: vec![("api", "active", 1)],
                active_ages: vec![("api", 12.0)],
            }
        }
        fn pool(&self) -> (u32, u32, u32) {
            (3, 2, 16)
        }
    }

    #[test]
    fn requests_are_counted_by_template_method_and_status_and_unknown_routes_share_one_label() {
        let routes = [("GET".to_owned(), "/v1/access-tokens/{id}".to_owned())];
        let metrics = Metrics::new(&routes, &["api"], &[], StoreMetrics::default());
        metrics.register(Arc::new(NoState));
        let ms = Duration::from_millis(1);
        metrics
            .http
            .record(Some("/v1/access-tokens/{id}"), "GET", 200, ms);
        metrics
            .http
            .record(Some("/v1/access-tokens/{id}"), "GET", 200, ms);
        metrics.http.record(None, "BREW", 404, ms);
        metrics.http.record(Some("/not/a/route"), "GET", 404, ms);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"access_tokens_http_requests_total{route="/v1/access-tokens/{id}",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"access_tokens_http_requests_total{route="unmatched",method="other",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"access_tokens_signing_key_active_age_seconds{key_set="api"} 12"#));
        assert!(text.contains("access_tokens_db_pool_max_connections 16"));
        assert!(text.contains(r#"access_tokens_auth_failures_total{reason="no_token"} 0"#));
    }

    #[test]
    fn process_figures_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds().is_some());
            assert!(resident_bytes().is_some_and(|b| b > 0));
            assert!(max_fds().is_some());
        }
    }
}
