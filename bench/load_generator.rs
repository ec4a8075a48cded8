//! A mixed load for `bench/load.sh` and `scripts/scale/test-balancer.sh`: N concurrent clients, each
//! looping create, list, and revoke of one of its own tokens, for at most a given time or until
//! SIGTERM/SIGINT (each client finishes the round it is in). Prints what it was answered as one
//! JSON object: counts per operation and status, latencies, the ids of the tokens created and
//! revoked (which the scripts check against the database), and every error with the times its
//! request was sent and answered (milliseconds since the Unix epoch, to be set beside the times a
//! script killed or restarted a replica).
//!
//! ```text
//! load_generator BASE_URL CALLER_TOKEN CLIENTS SECONDS
//!     [--introspect CLIENT_ID:SECRET]   also introspect each new token through BASE_URL
//!     [--replica URL]...                after each revoke answered 200, ask every replica
//!                                       directly until it refuses the token (needs --introspect)
//! ```
//!
//! With `--replica`, each revoke answered 200 starts a check that introspects the token at every
//! replica, at once and then every few milliseconds, until the replica answers `active: false`
//! (up to `CHECK_BOUND`). The time recorded is when that refusal was *answered*, so the delay
//! reported (refusal answered minus revoke answered) is an upper bound of the time the replica took
//! to learn of the revocation; the sending of the last ask answered `active: true` is a lower one. A replica that does not answer (killed, restarting) is asked again
//! every `UNREACHABLE_RETRY` until it does; such checks are marked, since their delay is the
//! replica's downtime, not the revocation's propagation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// How long a check asks a replica before it gives up (the replica never refused the token).
const CHECK_BOUND: Duration = Duration::from_secs(300);
/// Pause between two asks of a replica that answered `active: true`.
const ACTIVE_RETRY: Duration = Duration::from_millis(5);
/// Pause between two asks of a replica that did not answer.
const UNREACHABLE_RETRY: Duration = Duration::from_millis(50);

#[derive(Parser)]
#[command(about = "A mixed load of creates, lists, revokes and introspections")]
struct Args {
    base: String,
    caller: String,
    clients: usize,
    /// The longest the load runs; SIGTERM or SIGINT ends it sooner.
    seconds: u64,
    /// `client_id:secret` of an introspection client: each new token is introspected too.
    #[arg(long)]
    introspect: Option<String>,
    /// A replica's own URL (not the balancer's): every revoke answered 200 is checked there.
    #[arg(long = "replica")]
    replicas: Vec<String>,
}

/// Milliseconds since the Unix epoch, the time base shared with the scripts (`date +%s%3N`).
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A request answered with anything but its success status, or not answered at all (status 0).
#[derive(Serialize)]
struct Failure {
    operation: &'static str,
    status: u16,
    sent_ms: f64,
    answered_ms: f64,
}

/// One replica's side of a revocation check.
#[derive(Serialize)]
struct ReplicaCheck {
    replica: String,
    /// When the replica's refusal was answered; `None`: it never refused within `CHECK_BOUND`.
    refused_ms: Option<f64>,
    /// Answers `active: true` before the refusal.
    active_answers: u32,
    /// When the last ask answered `active: true` was sent: the propagation took at least until
    /// then (a lower bound of the delay, where `refused_ms` gives an upper one).
    last_active_sent_ms: Option<f64>,
    /// Asks the replica did not answer (it was down) before the refusal.
    unanswered: u32,
}

#[derive(Serialize)]
struct RevocationCheck {
    id: String,
    revoked_ms: f64,
    replicas: Vec<ReplicaCheck>,
}

#[derive(Clone)]
struct Introspection {
    client_id: String,
    secret: String,
}

#[derive(Default)]
struct Tally {
    /// (operation, status) -> count; status 0 is a transport error.
    answers: BTreeMap<(&'static str, u16), u64>,
    created: Vec<String>,
    revoked: Vec<String>,
    failures: Vec<Failure>,
    introspected_inactive: u64,
    latencies_ms: Vec<f64>,
}

impl Tally {
    fn count(&mut self, operation: &'static str, status: u16, expected: u16, started: Started) {
        *self.answers.entry((operation, status)).or_default() += 1;
        self.latencies_ms
            .push(started.at.elapsed().as_secs_f64() * 1000.0);
        if status != expected {
            self.failures.push(Failure {
                operation,
                status,
                sent_ms: started.epoch_ms,
                answered_ms: epoch_ms(),
            });
        }
    }
}

#[derive(Clone, Copy)]
struct Started {
    at: Instant,
    epoch_ms: f64,
}

impl Started {
    fn now() -> Self {
        Self {
            at: Instant::now(),
            epoch_ms: epoch_ms(),
        }
    }
}

/// Whether `token` introspects as active at `base`: `None` when nothing usable was answered.
async fn introspect(
    http: &reqwest::Client,
    base: &str,
    with: &Introspection,
    token: &str,
) -> Option<bool> {
    let response = http
        .post(format!("{base}/v1/access-tokens/introspect"))
        .basic_auth(&with.client_id, Some(&with.secret))
        .form(&[("token", token)])
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["active"].as_bool()
}

/// Asks `replica` about the revoked `token` until it refuses it (see the module's comment).
async fn check_replica(
    http: reqwest::Client,
    replica: String,
    with: Introspection,
    token: String,
    revoked: Instant,
) -> ReplicaCheck {
    let mut check = ReplicaCheck {
        replica,
        refused_ms: None,
        active_answers: 0,
        last_active_sent_ms: None,
        unanswered: 0,
    };
    while revoked.elapsed() < CHECK_BOUND {
        let sent_ms = epoch_ms();
        match introspect(&http, &check.replica, &with, &token).await {
            Some(false) => {
                check.refused_ms = Some(epoch_ms());
                break;
            }
            Some(true) => {
                check.active_answers += 1;
                check.last_active_sent_ms = Some(sent_ms);
                tokio::time::sleep(ACTIVE_RETRY).await;
            }
            None => {
                check.unanswered += 1;
                tokio::time::sleep(UNREACHABLE_RETRY).await;
            }
        }
    }
    check
}

async fn check_revocation(
    http: reqwest::Client,
    replicas: Arc<Vec<String>>,
    with: Introspection,
    id: String,
    token: String,
    revoked: Started,
) -> RevocationCheck {
    let mut asks = JoinSet::new();
    for (order, replica) in replicas.iter().enumerate() {
        let check = check_replica(
            http.clone(),
            replica.clone(),
            with.clone(),
            token.clone(),
            revoked.at,
        );
        asks.spawn(async move { (order, check.await) });
    }
    let mut checks: Vec<(usize, ReplicaCheck)> = asks.join_all().await;
    checks.sort_by_key(|(order, _)| *order);
    RevocationCheck {
        id,
        revoked_ms: revoked.epoch_ms,
        replicas: checks.into_iter().map(|(_, check)| check).collect(),
    }
}

struct Client {
    base: String,
    caller: String,
    index: usize,
    until: Instant,
    stop: Arc<AtomicBool>,
    introspection: Option<Introspection>,
    replicas: Arc<Vec<String>>,
    checker: reqwest::Client,
}

impl Client {
    async fn run(self) -> (Tally, Vec<RevocationCheck>) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let base = &self.base;
        let mut tally = Tally::default();
        let mut checks = JoinSet::new();
        // This client's unrevoked tokens, oldest first: (id, JWT).
        let mut mine: Vec<(String, String)> = Vec::new();
        let mut round = 0u64;
        while Instant::now() < self.until && !self.stop.load(Ordering::Relaxed) {
            round += 1;
            let started = Started::now();
            let created = http
                .post(format!("{base}/v1/access-tokens"))
                .bearer_auth(&self.caller)
                .json(&json!({"name": format!("load {}-{round}", self.index)}))
                .send()
                .await;
            let mut new_token = None;
            match created {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 201
                        && let Ok(body) = response.json::<Value>().await
                        && let (Some(id), Some(token)) =
                            (body["id"].as_str(), body["token"].as_str())
                    {
                        tally.created.push(id.to_owned());
                        mine.push((id.to_owned(), token.to_owned()));
                        new_token = Some(token.to_owned());
                    }
                    tally.count("create", status, 201, started);
                }
                Err(_) => tally.count("create", 0, 201, started),
            }

            if let (Some(with), Some(token)) = (&self.introspection, &new_token) {
                let started = Started::now();
                let answered = http
                    .post(format!("{base}/v1/access-tokens/introspect"))
                    .basic_auth(&with.client_id, Some(&with.secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await;
                match answered {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        if status == 200
                            && let Ok(body) = response.json::<Value>().await
                            && body["active"] != Value::Bool(true)
                        {
                            tally.introspected_inactive += 1;
                        }
                        tally.count("introspect", status, 200, started);
                    }
                    Err(_) => tally.count("introspect", 0, 200, started),
                }
            }

            let started = Started::now();
            let listed = http
                .get(format!("{base}/v1/access-tokens?limit=100"))
                .bearer_auth(&self.caller)
                .send()
                .await;
            match listed {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    tally.count("list", status, 200, started);
                }
                Err(_) => tally.count("list", 0, 200, started),
            }

            // Every other round, revoke the oldest of this client's tokens.
            if round.is_multiple_of(2) && !mine.is_empty() {
                let (id, token) = mine.remove(0);
                let started = Started::now();
                let revoked = http
                    .delete(format!("{base}/v1/access-tokens/{id}"))
                    .bearer_auth(&self.caller)
                    .send()
                    .await;
                match revoked {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        tally.count("revoke", status, 200, started);
                        if status == 200 {
                            tally.revoked.push(id.clone());
                            if let Some(with) = &self.introspection
                                && !self.replicas.is_empty()
                            {
                                // Answered now: the delay is measured from here.
                                let answered = Started::now();
                                checks.spawn(check_revocation(
                                    self.checker.clone(),
                                    self.replicas.clone(),
                                    with.clone(),
                                    id,
                                    token,
                                    answered,
                                ));
                            }
                        }
                    }
                    Err(_) => tally.count("revoke", 0, 200, started),
                }
            }
        }
        (tally, checks.join_all().await)
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let introspection = args.introspect.as_deref().map(|pair| {
        let (client_id, secret) = pair.split_once(':').unwrap_or_else(|| {
            eprintln!("--introspect takes CLIENT_ID:SECRET");
            std::process::exit(2);
        });
        Introspection {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }
    });
    if !args.replicas.is_empty() && introspection.is_none() {
        eprintln!("--replica needs --introspect: the replicas are asked by introspection");
        std::process::exit(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let checker = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let replicas = Arc::new(args.replicas);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients)
        .map(|index| {
            tokio::spawn(
                Client {
                    base: args.base.clone(),
                    caller: args.caller.clone(),
                    index,
                    until,
                    stop: stop.clone(),
                    introspection: introspection.clone(),
                    replicas: replicas.clone(),
                    checker: checker.clone(),
                }
                .run(),
            )
        })
        .collect();
    let mut total = Tally::default();
    let mut checks = Vec::new();
    for task in tasks {
        let (tally, client_checks) = task.await.expect("a client task");
        for (key, count) in tally.answers {
            *total.answers.entry(key).or_default() += count;
        }
        total.created.extend(tally.created);
        total.revoked.extend(tally.revoked);
        total.failures.extend(tally.failures);
        total.introspected_inactive += tally.introspected_inactive;
        total.latencies_ms.extend(tally.latencies_ms);
        checks.extend(client_checks);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_ms.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        let n = total.latencies_ms.len();
        if n == 0 {
            return 0.0;
        }
        total.latencies_ms[((n as f64 * p) as usize).min(n - 1)]
    };
    let answers: BTreeMap<String, u64> = total
        .answers
        .iter()
        .map(|((op, status), count)| (format!("{op} {status}"), *count))
        .collect();
    let requests: u64 = total.answers.values().sum();
    total
        .failures
        .sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    let report = json!({
        "clients": args.clients,
        "seconds": elapsed,
        "requests": requests,
        "requests_per_second": requests as f64 / elapsed,
        "answers": answers,
        "server_errors": total.answers.iter().filter(|((_, s), _)| *s >= 500).map(|(_, c)| c).sum::<u64>(),
        "transport_errors": total.answers.iter().filter(|((_, s), _)| *s == 0).map(|(_, c)| c).sum::<u64>(),
        "latency_ms": {"p50": percentile(0.5), "p99": percentile(0.99), "max": percentile(1.0)},
        "created": total.created,
        "revoked": total.revoked,
        "failures": total.failures,
        "introspected_inactive": total.introspected_inactive,
        "revocation_checks": checks,
    });
    println!("{report}");
}
