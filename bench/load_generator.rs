//! A mixed load for `bench/load.sh`: N concurrent clients, each looping create, list, and revoke
//! of one of its own tokens, for a given time. Prints what it was answered as one JSON object:
//! counts per operation and status, latencies, and the ids of the tokens created and revoked,
//! which the script checks against the database.
//!
//! `cargo run --release --example load -- BASE_URL CALLER_TOKEN CLIENTS SECONDS`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[derive(Default)]
struct Tally {
    /// (operation, status) -> count; status 0 is a transport error.
    answers: BTreeMap<(String, u16), u64>,
    created: Vec<String>,
    revoked: Vec<String>,
    latencies_ms: Vec<f64>,
}

impl Tally {
    fn count(&mut self, operation: &str, status: u16, started: Instant) {
        *self
            .answers
            .entry((operation.to_owned(), status))
            .or_default() += 1;
        self.latencies_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
    }
}

async fn client(base: String, caller: String, until: Instant, index: usize) -> Tally {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let mut tally = Tally::default();
    let mut mine: Vec<String> = Vec::new();
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        let started = Instant::now();
        let created = http
            .post(format!("{base}/v1/access-tokens"))
            .bearer_auth(&caller)
            .json(&json!({"name": format!("load {index}-{round}")}))
            .send()
            .await;
        match created {
            Ok(response) => {
                let status = response.status().as_u16();
                if status == 201
                    && let Ok(body) = response.json::<Value>().await
                    && let Some(id) = body["id"].as_str()
                {
                    tally.created.push(id.to_owned());
                    mine.push(id.to_owned());
                }
                tally.count("create", status, started);
            }
            Err(_) => tally.count("create", 0, started),
        }

        let started = Instant::now();
        let listed = http
            .get(format!("{base}/v1/access-tokens?limit=100"))
            .bearer_auth(&caller)
            .send()
            .await;
        match listed {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                tally.count("list", status, started);
            }
            Err(_) => tally.count("list", 0, started),
        }

        // Every other round, revoke the oldest of this client's tokens.
        if round.is_multiple_of(2) && !mine.is_empty() {
            let id = mine.remove(0);
            let started = Instant::now();
            let revoked = http
                .delete(format!("{base}/v1/access-tokens/{id}"))
                .bearer_auth(&caller)
                .send()
                .await;
            match revoked {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 200 {
                        tally.revoked.push(id);
                    }
                    tally.count("revoke", status, started);
                }
                Err(_) => tally.count("revoke", 0, started),
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, caller, clients, seconds] = args.as_slice() else {
        eprintln!("usage: load BASE_URL CALLER_TOKEN CLIENTS SECONDS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS is a number");
    let seconds: u64 = seconds.parse().expect("SECONDS is a number");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(client(base.clone(), caller.clone(), until, i)))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("a client task");
        for (key, count) in tally.answers {
            *total.answers.entry(key).or_default() += count;
        }
        total.created.extend(tally.created);
        total.revoked.extend(tally.revoked);
        total.latencies_ms.extend(tally.latencies_ms);
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
    let report = json!({
        "clients": clients,
        "seconds": elapsed,
        "requests": requests,
        "requests_per_second": requests as f64 / elapsed,
        "answers": answers,
        "server_errors": total.answers.iter().filter(|((_, s), _)| *s >= 500).map(|(_, c)| c).sum::<u64>(),
        "transport_errors": total.answers.iter().filter(|((_, s), _)| *s == 0).map(|(_, c)| c).sum::<u64>(),
        "latency_ms": {"p50": percentile(0.5), "p99": percentile(0.99), "max": percentile(1.0)},
        "created": total.created,
        "revoked": total.revoked,
    });
    println!("{report}");
}
