//! Prometheus metrics: served on the metrics listener only, in the text format as Prometheus
//! parses it, with every family present after a day's worth of calls; never on the public port.

use std::net::SocketAddr;

use prom_text_format_parser::{Scrape, Type, ValueType};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StoreKind, TestApp, TestIssuer, assert_error, settings};

/// Every family the service exposes, as named in the exposition.
const FAMILIES: [&str; 27] = [
    "access_tokens_http_requests_total",
    "access_tokens_http_request_duration_seconds",
    "access_tokens_tokens_created_total",
    "access_tokens_tokens_revoked_total",
    "access_tokens_tokens_rotated_total",
    "access_tokens_tokens_suspended_total",
    "access_tokens_tokens_resumed_total",
    "access_tokens_introspections_total",
    "access_tokens_auth_failures_total",
    "access_tokens_issuer_jwks_fetches_total",
    "access_tokens_signing_keys",
    "access_tokens_signing_key_active_age_seconds",
    "access_tokens_db_pool_connections",
    "access_tokens_db_pool_idle_connections",
    "access_tokens_db_pool_max_connections",
    "access_tokens_db_pool_acquire_duration_seconds",
    "access_tokens_db_pool_waiting_requests",
    "access_tokens_token_create_queued",
    "access_tokens_token_create_group_size",
    "access_tokens_revocation_listener_up",
    "access_tokens_revocation_notifications_total",
    "access_tokens_status_list_render_duration_seconds",
    "access_tokens_status_list_render_failures_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
];

async fn scrape(app: &TestApp) -> Scrape {
    let base = app.metrics_base.as_ref().expect("metrics are on in tests");
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    Scrape::parse(&text).unwrap_or_else(|e| panic!("{e:?} in\n{text}"))
}

/// The sum of `family` over its series with these labels (and any others): a counter's or a
/// gauge's value, a histogram's count of observations.
fn sum(scrape: &Scrape, family: &str, labels: &[(&str, &str)]) -> f64 {
    let metric = scrape
        .metrics
        .iter()
        .find(|m| m.name == family)
        .unwrap_or_else(|| panic!("{family} is not exposed"));
    let wanted = if metric.kind == Type::Histogram {
        ValueType::Count
    } else {
        ValueType::Sample
    };
    metric
        .samples
        .iter()
        .filter(|s| s.value.value_type == wanted)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
        })
        .map(|s| s.value.value.as_f64())
        .sum()
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[tokio::test]
async fn every_family_is_exposed_with_valid_names_and_plausible_values() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let client = &app.client;

    // A day's worth of calls: create, list, rotate, revoke, suspend, resume, introspect.
    let api = app.create_ok(&owner, json!({"name": "ci"})).await;
    let app_token = app
        .create_ok(&owner, json!({"name": "app", "token_type": "app"}))
        .await;
    let suspended = app.create_ok(&owner, json!({"name": "paused"})).await;
    let id = |t: &serde_json::Value| t["id"].as_str().unwrap().to_owned();
    assert_eq!(app.list(&owner, "").await.status(), StatusCode::OK);
    assert_eq!(
        app.get_token(&owner, &id(&api)).await.status(),
        StatusCode::OK
    );
    let rotated = app.rotate(&owner, &id(&app_token)).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    assert_eq!(app.revoke(&owner, &id(&api)).await.status(), StatusCode::OK);
    for action in ["suspend", "resume", "suspend"] {
        let response = client
            .post(app.url(&format!("/v1/access-tokens/{}/{action}", id(&suspended))))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{action}");
    }
    let active = app.create_ok(&owner, json!({"name": "live"})).await;
    assert_eq!(
        app.introspect(active["token"].as_str().unwrap()).await["active"],
        true
    );
    assert_eq!(app.introspect("not-a-token").await["active"], false);
    let refused = client
        .post(app.url("/v1/access-tokens/introspect"))
        .basic_auth("gateway", Some("a-wrong-secret-0123456789"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Failed authentications of a few kinds.
    let revoked = api["token"].as_str().unwrap();
    let paused = suspended["token"].as_str().unwrap();
    let live = active["token"].as_str().unwrap();
    // The signature of another token of the same key under this token's header and claims.
    let (head, _) = live.rsplit_once('.').unwrap();
    let (_, other_signature) = paused.rsplit_once('.').unwrap();
    let forged = format!("{head}.{other_signature}");
    let unknown_kid = app.issuer.token_of_unpublished_key("1", "u-1");
    for bearer in [
        None,
        Some("not-a-jwt"),
        Some(revoked),
        Some(paused),
        Some(forged.as_str()),
        Some(unknown_kid.as_str()),
    ] {
        let mut request = client.get(app.url("/v1/access-tokens"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // A raw path with an id must show as its template; an unknown path as `unmatched`.
    assert_eq!(
        app.get("/no/such/route").await.status(),
        StatusCode::NOT_FOUND
    );
    // A verifier's fetch of the keys.
    assert_eq!(
        app.get("/v1/access-tokens/.well-known/jwks.json")
            .await
            .status(),
        StatusCode::OK
    );

    let scrape = scrape(&app).await;
    for metric in &scrape.metrics {
        assert!(is_metric_name(&metric.name), "{}", metric.name);
        assert!(metric.help_desc.is_some(), "{} has no HELP", metric.name);
        for sample in &metric.samples {
            let v = sample.value.value.as_f64();
            let bound = sample.labels.iter().any(|l| l.key == "le");
            assert!((v.is_finite() || bound) && v >= 0.0, "{}: {v}", metric.name);
            // No label holds an id: neither of a token, a user nor an organization.
            for label in sample.labels.iter() {
                assert!(is_metric_name(&label.key), "{}", label.key);
                for id in [id(&api), id(&active), id(&suspended), "u-1".to_owned()] {
                    assert!(
                        !label.value.contains(&id),
                        "{}: {}",
                        metric.name,
                        label.value
                    );
                }
            }
        }
    }
    let names: std::collections::BTreeSet<&str> =
        scrape.metrics.iter().map(|m| m.name.as_str()).collect();
    for family in FAMILIES {
        assert!(names.contains(family), "{family} missing from {names:?}");
    }

    let requests = "access_tokens_http_requests_total";
    assert!(
        sum(
            &scrape,
            requests,
            &[
                ("route", "/v1/access-tokens"),
                ("method", "POST"),
                ("status", "201")
            ]
        ) >= 4.0
    );
    assert_eq!(
        sum(
            &scrape,
            requests,
            &[("route", "/v1/access-tokens/{id}"), ("method", "DELETE")]
        ),
        1.0
    );
    assert!(
        sum(
            &scrape,
            requests,
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        sum(
            &scrape,
            "access_tokens_http_request_duration_seconds",
            &[("route", "/v1/access-tokens")]
        ) >= 5.0
    );

    // The documents answered ahead of the router's layers are counted as every other request.
    assert!(
        sum(
            &scrape,
            requests,
            &[
                ("route", "/v1/access-tokens/.well-known/jwks.json"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    let created = "access_tokens_tokens_created_total";
    assert!(sum(&scrape, created, &[("token_type", "api")]) >= 3.0);
    // The app token and its rotation.
    assert_eq!(sum(&scrape, created, &[("token_type", "app")]), 2.0);
    assert_eq!(sum(&scrape, created, &[("token_type", "journey")]), 0.0);
    assert_eq!(sum(&scrape, "access_tokens_tokens_revoked_total", &[]), 1.0);
    assert_eq!(sum(&scrape, "access_tokens_tokens_rotated_total", &[]), 1.0);
    assert_eq!(
        sum(&scrape, "access_tokens_tokens_suspended_total", &[]),
        2.0
    );
    assert_eq!(sum(&scrape, "access_tokens_tokens_resumed_total", &[]), 1.0);

    let introspections = "access_tokens_introspections_total";
    for result in ["active", "inactive", "client_refused"] {
        assert_eq!(
            sum(&scrape, introspections, &[("result", result)]),
            1.0,
            "{result}"
        );
    }

    let failures = "access_tokens_auth_failures_total";
    for reason in [
        "no_token",
        "malformed",
        "revoked",
        "suspended",
        "bad_signature",
        "unknown_key",
    ] {
        assert_eq!(
            sum(&scrape, failures, &[("reason", reason)]),
            1.0,
            "{reason}"
        );
    }
    for reason in [
        "expired",
        "untrusted_issuer",
        "rate_limited",
        "not_accepted",
    ] {
        assert_eq!(
            sum(&scrape, failures, &[("reason", reason)]),
            0.0,
            "{reason}"
        );
    }

    // The test issuer's JWKS was fetched for the owner's first call (and for the unknown kid).
    let fetches = "access_tokens_issuer_jwks_fetches_total";
    assert!(
        sum(
            &scrape,
            fetches,
            &[("issuer", &app.issuer.url), ("result", "ok")]
        ) >= 1.0
    );
    assert_eq!(sum(&scrape, fetches, &[("result", "error")]), 0.0);

    // Each key set: an active and a next key, the active one made moments ago.
    for set in ["api", "public", "portal-preview", "contact-identification"] {
        let keys = "access_tokens_signing_keys";
        assert_eq!(
            sum(&scrape, keys, &[("key_set", set), ("state", "active")]),
            1.0
        );
        assert_eq!(
            sum(&scrape, keys, &[("key_set", set), ("state", "next")]),
            1.0
        );
        assert_eq!(
            sum(&scrape, keys, &[("key_set", set), ("state", "revoked")]),
            0.0
        );
        let age = sum(
            &scrape,
            "access_tokens_signing_key_active_age_seconds",
            &[("key_set", set)],
        );
        assert!((0.0..3600.0).contains(&age), "{set}: {age}");
    }

    let max = sum(&scrape, "access_tokens_db_pool_max_connections", &[]);
    assert!(max >= 1.0);
    assert!(sum(&scrape, "access_tokens_db_pool_connections", &[]) <= max);
    assert!(
        sum(&scrape, "access_tokens_db_pool_idle_connections", &[])
            <= sum(&scrape, "access_tokens_db_pool_connections", &[])
    );
    let acquired = sum(
        &scrape,
        "access_tokens_db_pool_acquire_duration_seconds",
        &[],
    );
    let groups = sum(&scrape, "access_tokens_token_create_group_size", &[]);
    // Every creation answered has left the writer's queue.
    assert_eq!(sum(&scrape, "access_tokens_token_create_queued", &[]), 0.0);
    let listener = sum(&scrape, "access_tokens_revocation_listener_up", &[]);
    // The first render of each set with lists at start-up, and the one after the revoke.
    let renders = sum(
        &scrape,
        "access_tokens_status_list_render_duration_seconds",
        &[],
    );
    assert!(renders >= 3.0, "{renders}");
    assert_eq!(
        sum(
            &scrape,
            "access_tokens_status_list_render_failures_total",
            &[]
        ),
        0.0
    );
    if crate::helpers::store() == StoreKind::Postgres {
        assert!(acquired >= 1.0, "{acquired}");
        // Five creations and a rotation, in groups of one or more.
        assert!((1.0..=6.0).contains(&groups), "{groups}");
        assert_eq!(listener, 1.0);
    } else {
        // The embedded store has no grouped writes and no revocation feed.
        assert_eq!(groups, 0.0);
        assert_eq!(listener, 0.0);
    }

    assert!(sum(&scrape, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(sum(&scrape, "process_open_fds", &[]) >= 3.0);
    assert!(sum(&scrape, "process_cpu_seconds_total", &[]) > 0.0);
}

#[tokio::test]
async fn the_public_port_does_not_serve_metrics() {
    let app = TestApp::spawn().await;
    let response = app.get("/metrics").await;
    let message = assert_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(message, "no such route");
    // And the metrics listener serves nothing else.
    let base = app.metrics_base.as_ref().unwrap();
    let other = reqwest::get(format!("{base}/v1/access-tokens/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_off_binds_no_listener() {
    let app = TestApp::spawn_with(|s| s.http.metrics_addr = None).await;
    assert!(app.metrics_base.is_none());
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/health/live").await.status(),
        StatusCode::OK,
        "the service serves without it"
    );
}

#[tokio::test]
async fn a_metrics_address_in_use_stops_start_up_naming_the_variable() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = taken.local_addr().unwrap();
    let database = crate::helpers::fresh_database().await;
    let kek = access_tokens::keys::KeyEncryptionKey::generate();
    let mut s = settings(database, kek, vec![TestIssuer::url_only()]);
    s.http.metrics_addr = Some(address);
    let error = access_tokens::App::build(s)
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(error.contains(&address.to_string()), "{error}");
    assert!(error.contains("METRICS_ADDR"), "{error}");
}
