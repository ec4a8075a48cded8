//! Faults around the service: a trusted issuer whose JWKS answers slowly, and a crash (kill -9)
//! under load, after which every token a client received has its row.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{Served, command};
use crate::helpers::{TestApp, database_env, eventually, fresh_database, test_kek_base64};

/// Creations the load must have answered before the kill: enough for requests to be in flight
/// at every stage when it comes.
const ANSWERED_BEFORE_KILL: usize = 40;

#[tokio::test]
async fn a_slow_issuer_delays_only_unknown_kids_and_no_longer_than_the_fetch_timeout() {
    let app = TestApp::spawn().await;
    let known = app.issuer.user("1", "u1", &["1:owner"]);
    // The first call fetches the issuer's keys; from now on they are cached.
    assert_eq!(app.list(&known, "").await.status(), StatusCode::OK);
    app.issuer.slow.store(true, Ordering::SeqCst);
    // Past the refetch cooldown, a token with an unknown kid makes the service fetch again.
    tokio::time::sleep(access_tokens::issuers::REFETCH_COOLDOWN + Duration::from_millis(200)).await;
    let unknown = app.issuer.token_of_unpublished_key("1", "u2");

    let started = Instant::now();
    let refused_done = std::sync::atomic::AtomicBool::new(false);
    let refused = async {
        let answers = futures_util::future::join_all((0..8).map(|_| app.list(&unknown, ""))).await;
        refused_done.store(true, Ordering::SeqCst);
        answers
    };
    let served = async {
        // Callers whose key is cached are not held up by the fetch: they are answered while the
        // unknown kids still wait on it (which lasts the service's 3 s fetch timeout).
        for _ in 0..5 {
            assert_eq!(app.list(&known, "").await.status(), StatusCode::OK);
        }
        refused_done.load(Ordering::SeqCst)
    };
    let (refused, served_after_the_fetch) = tokio::join!(refused, served);
    assert!(
        refused
            .iter()
            .all(|r| r.status() == StatusCode::UNAUTHORIZED),
        "unknown kids are refused"
    );
    let waited = started.elapsed();
    // The issuer answers after 60 s; the fetch gives up after 3 s. Half a minute tells the two
    // apart however busy the machine.
    assert!(
        waited < Duration::from_secs(30),
        "unknown kids fail within the 3 s fetch timeout, not behind a minute-long fetch: {waited:?}"
    );
    assert!(
        !served_after_the_fetch,
        "cached callers were served while the fetch was under way"
    );
    assert_eq!(
        app.issuer.fetches.load(Ordering::SeqCst),
        2,
        "one fetch at start, one (slow) fetch for all eight unknown-kid requests"
    );
}

/// Creates tokens in a loop until the server stops answering; returns the ids it was given.
async fn create_until_gone(
    base: String,
    caller: String,
    answered: Arc<AtomicUsize>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0.. {
        let response = client
            .post(format!("{base}/v1/access-tokens"))
            .bearer_auth(&caller)
            .json(&json!({"name": format!("load {i}")}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match response {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let body: Result<Value, _> = r.json().await;
                match body {
                    Ok(body) => {
                        ids.push(body["id"].as_str().unwrap().to_owned());
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break, // the answer was cut off by the crash
                }
            }
            Ok(r) => panic!("unexpected answer {}", r.status()),
            Err(_) => break,
        }
    }
    ids
}

#[tokio::test]
async fn after_kill_9_under_load_every_token_a_client_received_has_its_row() {
    let database = fresh_database().await;
    let folder = crate::helpers::fresh_folder();
    let serve = || {
        let mut command = command();
        command
            .arg("serve")
            .current_dir(&folder)
            .envs(database_env(&database))
            .env("KEY_ENCRYPTION_KEY", test_kek_base64())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            // The same issuer before and after the restart, whatever port each run gets.
            .env("PUBLIC_URL", "http://tokens.test")
            .env("RATE_LIMIT_CREATE_PER_ORG", "0")
            .env("RATE_LIMIT_CREATE_PER_CALLER", "0");
        command
    };
    let mut served = Served::start(serve());
    // A caller of the service's own: a dev token (on PostgreSQL, allowed explicitly).
    let output = command()
        .args([
            "dev-token",
            "--org",
            "1",
            "--user",
            "load",
            "--role",
            "owner",
            "--allow-production",
        ])
        .envs(database_env(&database))
        .env("KEY_ENCRYPTION_KEY", test_kek_base64())
        .env("PUBLIC_URL", "http://tokens.test")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let caller = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let answered = answered.clone();
            tokio::spawn(create_until_gone(
                served.base.clone(),
                caller.clone(),
                answered,
            ))
        })
        .collect();
    // Killed under load: once the load has answered enough creations, however long that takes
    // on this machine (the bound only keeps a broken service from hanging the suite).
    let loaded = eventually(300, || async {
        answered.load(Ordering::Relaxed) >= ANSWERED_BEFORE_KILL
    })
    .await;
    served.child.kill().unwrap(); // SIGKILL: no graceful anything
    served.child.wait().unwrap();
    let mut received = Vec::new();
    for client in clients {
        received.extend(client.await.unwrap());
    }
    assert!(
        loaded && received.len() >= ANSWERED_BEFORE_KILL,
        "the load answered {} creations in 5 minutes",
        received.len()
    );
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "no id was handed out twice");

    // Restarted on the same data, the service lists every token a client received.
    let again = Served::start(serve());
    let client = reqwest::Client::new();
    let mut listed = HashSet::new();
    let mut next = Some(format!("{}/v1/access-tokens?limit=1000", again.base));
    while let Some(url) = next.take() {
        let page = client.get(&url).bearer_auth(&caller).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        // The Link header names the public URL; the pages are read from this run's address.
        next = crate::helpers::next_link(&page)
            .map(|link| link.replacen("http://tokens.test", &again.base, 1));
        let items: Vec<Value> = page.json().await.unwrap();
        listed.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
    }
    let missing: Vec<&String> = received.iter().filter(|id| !listed.contains(*id)).collect();
    assert!(missing.is_empty(), "answered but not stored: {missing:?}");
    again.stop();
}
