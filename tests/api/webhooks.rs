//! Lifecycle webhooks, against receivers the tests start on loopback: every event type arrives
//! once, signed as Standard Webhooks describes; a receiver that is down gets the event when it is
//! back; a replica that dies mid-delivery leaves it to another; a thousand tokens expiring within
//! a day are each warned once; addresses inside the network are refused at creation and at
//! delivery; endpoints belong to their organization's admins.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{StoreKind, TestApp, assert_error, eventually, store};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
}

impl Received {
    pub(crate) fn event(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How a receiver answers: `status` (200 unless set), with `location` when set; the first
/// request never, with `hang_first`.
#[derive(Default)]
struct Behaviour {
    status: Option<u16>,
    /// Answer 503 to this many requests first.
    fail_first: usize,
    location: Option<String>,
    hang_first: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Receiver {
    /// Starts a receiver on `listener`.
    fn serve(&self, listener: TcpListener) {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    pub(crate) async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        receiver.serve(listener);
        (receiver, address)
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.event()["type"] == event_type)
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let hang = {
        let mut b = r.behaviour.lock().unwrap();
        std::mem::take(&mut b.hang_first)
    };
    r.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    if hang {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    let mut b = r.behaviour.lock().unwrap();
    let mut answer = HeaderMap::new();
    if b.fail_first > 0 {
        b.fail_first -= 1;
        return (AxumStatus::SERVICE_UNAVAILABLE, answer);
    }
    if let Some(location) = &b.location {
        answer.insert("location", location.parse().unwrap());
    }
    (
        AxumStatus::from_u16(b.status.unwrap_or(200)).unwrap(),
        answer,
    )
}

/// Whether `received` carries a valid signature by `secret` (`whsec_...`), checked as the
/// Standard Webhooks libraries do: HMAC-SHA256 of `id.timestamp.body`, any of the signatures.
fn signed_by(received: &Received, secret: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let content = format!("{}.{}.{}", received.id, received.timestamp, received.body);
    let expected = format!(
        "v1,{}",
        STANDARD.encode(hmac::sign(&key, content.as_bytes()).as_ref())
    );
    received.signature.split(' ').any(|s| s == expected)
}

async fn create_endpoint(app: &TestApp, bearer: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/access-tokens/webhooks"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Registers `url` for organization 1 as its owner; returns (id, secret).
pub(crate) async fn endpoint(
    app: &TestApp,
    url: &str,
    events: Option<&[&str]>,
) -> (String, String) {
    let mut body = json!({ "url": url, "description": "test receiver" });
    if let Some(events) = events {
        body["events"] = json!(events);
    }
    let response = create_endpoint(app, &app.owner(), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// A receiver on loopback registered as an endpoint of the owner's organization for `events` (all
/// when `None`), and the endpoint's id.
async fn subscribed(app: &TestApp, events: Option<&[&str]>) -> (Receiver, String) {
    let (receiver, address) = Receiver::start().await;
    let (id, _) = endpoint(app, &format!("http://{address}/hook"), events).await;
    (receiver, id)
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!("/v1/access-tokens/webhooks/{id}/deliveries")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `GET path` as `bearer`, its JSON body.
async fn get_json(app: &TestApp, bearer: &str, path: &str) -> Value {
    app.client
        .get(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(app: &TestApp, bearer: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// Runs one statement on the app's database (PostgreSQL or SQLite), the same text on both.
async fn sql(app: &TestApp, postgres: &'static str, sqlite: &'static str) {
    match store() {
        StoreKind::Postgres => app.execute(postgres).await,
        StoreKind::Sqlite => app.execute(sqlite).await,
    }
}

#[tokio::test]
async fn every_event_type_arrives_once_signed_as_standard_webhooks() {
    let app = TestApp::spawn().await;
    let (receiver, address) = Receiver::start().await;
    let (_, secret) = endpoint(&app, &format!("http://{address}/hook"), None).await;
    let owner = app.owner();

    let kept = app.create_ok(&owner, json!({"name": "kept"})).await;
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            &app,
            &owner,
            &format!("/v1/access-tokens/{kept_id}/suspend")
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&app, &owner, &format!("/v1/access-tokens/{kept_id}/resume"))
            .await
            .status(),
        StatusCode::OK
    );
    let rotated = app.rotate(&owner, &kept_id).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let new_id = rotated.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.revoke(&owner, &new_id).await.status(), StatusCode::OK);
    app.set_policy(json!({"require_expiry": true})).await;
    // Created inside the 7-day threshold: warned at 7 days (and not at 14).
    let short = app
        .create_ok(&owner, json!({"name": "short", "expires_in": "3d"}))
        .await;
    let short_id = short["id"].as_str().unwrap().to_owned();
    // An expired token, told once its notice is due.
    let gone = app
        .create_ok(&owner, json!({"name": "gone", "expires_in": "30d"}))
        .await;
    let gone_id = gone["id"].as_str().unwrap().to_owned();
    app.expire(&gone_id).await;
    sql(
        &app,
        "update access_tokens set notice_at = expires_at where name = 'gone'",
        "update access_tokens set notice_at = expires_at where name = 'gone'",
    )
    .await;
    access_tokens::keys::lifecycle::rotate(
        &app.store().await,
        &app.kek,
        &[access_tokens::keys::KeySetName::Api],
        &app.public_url,
    )
    .await
    .unwrap();

    // (type, subject) of every event these changes make.
    let expected: Vec<(&str, Option<&str>)> = vec![
        ("token.created", Some(&kept_id)),
        ("token.suspended", Some(&kept_id)),
        ("token.resumed", Some(&kept_id)),
        ("token.rotated", Some(&kept_id)),
        ("token.revoked", Some(&kept_id)),
        ("token.created", Some(&new_id)),
        ("token.revoked", Some(&new_id)),
        ("policy.changed", None),
        ("token.created", Some(&short_id)),
        ("token.expiring", Some(&short_id)),
        ("token.created", Some(&gone_id)),
        ("token.expired", Some(&gone_id)),
        ("key.rotated", None),
    ];
    assert!(
        eventually(30, || async { receiver.got().len() >= expected.len() }).await,
        "got {:?}",
        receiver
            .got()
            .iter()
            .map(|r| r.event()["type"].clone())
            .collect::<Vec<_>>()
    );
    // Nothing more arrives: each was sent once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.got();
    let mut seen: Vec<(String, Option<String>)> = got
        .iter()
        .map(|r| {
            let e = r.event();
            (
                e["type"].as_str().unwrap().to_owned(),
                e["subject"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let mut wanted: Vec<(String, Option<String>)> = expected
        .iter()
        .map(|(t, s)| ((*t).to_owned(), s.map(str::to_owned)))
        .collect();
    seen.sort();
    wanted.sort();
    assert_eq!(seen, wanted);

    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "every message has its own webhook-id");
    let now = chrono::Utc::now().timestamp();
    for r in &got {
        assert!(signed_by(r, &secret), "{r:?}");
        assert!(!signed_by(r, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        let at: i64 = r.timestamp.parse().unwrap();
        assert!((now - at).abs() < 120);
        assert!(r.content_type.starts_with("application/cloudevents+json"));
        let e = r.event();
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["id"], r.id.as_str());
        assert_eq!(e["source"], format!("{}/v1/access-tokens", app.public_url));
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        // Never a JWT.
        assert!(!r.body.contains("eyJ"), "{}", r.body);
        if let Some(subject) = e["subject"].as_str()
            && e["type"].as_str().unwrap().starts_with("token.")
        {
            assert_eq!(e["data"]["id"], subject);
            assert_eq!(e["organization"], "1");
            assert!(e["data"]["token_type"].is_string());
        }
    }
    let reason = |subject: &str| {
        got.iter()
            .map(Received::event)
            .find(|e| e["type"] == "token.revoked" && e["subject"] == subject)
            .unwrap()["data"]["reason"]
            .clone()
    };
    assert_eq!(reason(&kept_id), "rotated");
    assert_eq!(reason(&new_id), "revoked");
    let expiring = receiver.of_type("token.expiring");
    assert_eq!(expiring[0].event()["data"]["expires_in_days"], 7);
    let rotation = receiver.of_type("token.rotated");
    assert_eq!(rotation[0].event()["data"]["replaced_by"], new_id.as_str());
    let policy = receiver.of_type("policy.changed");
    assert_eq!(policy[0].event()["data"]["new"]["require_expiry"], true);
    let key = receiver.of_type("key.rotated");
    assert_eq!(key[0].event()["data"]["key_set"], "api");

    // Counted on the metrics listener.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.metrics_base.as_ref().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("access_tokens_webhook_deliveries_total{result=\"delivered\"} 13"));
    assert!(metrics.contains("access_tokens_webhook_queue_depth"));
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_when_it_is_back() {
    let app = TestApp::spawn().await;
    // A port nobody listens on, for now.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = reserved.local_addr().unwrap();
    drop(reserved);
    let (id, secret) = endpoint(&app, &format!("http://{address}/hook"), None).await;
    let token = app
        .create_ok(&app.owner(), json!({"name": "while down"}))
        .await;

    assert!(
        eventually(30, || async {
            deliveries(&app, &id)
                .await
                .first()
                .is_some_and(|d| d["attempts"].as_i64() >= Some(1) && d["error"].is_string())
        })
        .await
    );
    let first = deliveries(&app, &id).await[0].clone();
    assert_eq!(first["status"], "pending");
    assert!(first["next_attempt_at"].is_string());
    assert!(
        first["error"].as_str().unwrap().contains("connect"),
        "{first}"
    );

    let receiver = Receiver::default();
    receiver.serve(TcpListener::bind(address).await.unwrap());
    assert!(eventually(60, || async { !receiver.got().is_empty() }).await);
    let got = receiver.got();
    assert_eq!(got[0].event()["subject"], token["id"]);
    assert!(signed_by(&got[0], &secret));
    assert!(
        eventually(10, || async {
            deliveries(&app, &id).await[0]["status"] == "delivered"
        })
        .await
    );
    let delivered = deliveries(&app, &id).await[0].clone();
    assert!(delivered["attempts"].as_i64().unwrap() >= 2, "{delivered}");
    assert_eq!(delivered["response_status"], 200);
    assert_eq!(delivered["message_id"], got[0].id.as_str());

    // Sent again on request, with the same webhook-id.
    let delivery_id = delivered["id"].as_i64().unwrap();
    let again = post(
        &app,
        &app.owner(),
        &format!("/v1/access-tokens/webhooks/{id}/deliveries/{delivery_id}/redeliver"),
    )
    .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert!(eventually(30, || async { receiver.got().len() == 2 }).await);
    assert_eq!(receiver.got()[1].id, got[0].id);
    let missing = post(
        &app,
        &app.owner(),
        &format!("/v1/access-tokens/webhooks/{id}/deliveries/999999/redeliver"),
    )
    .await;
    assert_error(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_replica_that_dies_mid_delivery_leaves_the_delivery_to_another() {
    let mut a = TestApp::spawn_with(|s| s.webhooks.timeout = Duration::from_secs(2)).await;
    let (receiver, _) = subscribed(&a, Some(&["token.created"])).await;
    receiver.behaviour.lock().unwrap().hang_first = true;
    let token = a.create_ok(&a.owner(), json!({"name": "in flight"})).await;
    // The first attempt is in flight (the receiver does not answer it): the replica dies.
    assert!(eventually(30, || async { receiver.got().len() == 1 }).await);
    a.stop();
    if let Some(stopped) = a.stopped.take() {
        let _ = stopped.await;
    }
    let b = a.replica().await;
    // Once the lease of the dead replica's claim is over, the other replica delivers it.
    assert!(eventually(60, || async { receiver.got().len() >= 2 }).await);
    let got = receiver.got();
    assert_eq!(
        got[1].id, got[0].id,
        "the same message, delivered at least once"
    );
    assert_eq!(got[1].event()["subject"], token["id"]);
    drop(b);
}

#[tokio::test]
async fn a_thousand_tokens_expiring_within_a_day_are_each_warned_once() {
    let app = TestApp::spawn().await;
    let (receiver, _) = subscribed(&app, Some(&["token.expiring"])).await;
    let owner = app.owner();
    for n in 0..1000 {
        app.create_ok(
            &owner,
            json!({"name": format!("batch {n}"), "expires_in": "20h"}),
        )
        .await;
    }
    assert!(
        eventually(120, || async { receiver.got().len() >= 1000 }).await,
        "{} warnings",
        receiver.got().len()
    );
    // Several more scans: nothing is told twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1000);
    let mut subjects: Vec<String> = got
        .iter()
        .map(|r| {
            let e = r.event();
            assert_eq!(e["data"]["expires_in_days"], 1);
            e["subject"].as_str().unwrap().to_owned()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 1000);
}

#[tokio::test]
async fn a_long_token_is_warned_at_each_threshold_once_as_time_passes() {
    let app = TestApp::spawn().await;
    let (receiver, _) = subscribed(&app, Some(&["token.expiring", "token.expired"])).await;
    let owner = app.owner();
    for n in 0..20 {
        app.create_ok(
            &owner,
            json!({"name": format!("long {n}"), "expires_in": "20d"}),
        )
        .await;
    }
    // Time passes: every stored time moves back by `days`.
    async fn days_pass(app: &TestApp, days: u8) {
        match days {
            7 => {
                sql(
                    app,
                    "update access_tokens set expires_at = expires_at - interval '7 days', notice_at = notice_at - interval '7 days'",
                    "update access_tokens set expires_at = expires_at - 604800000000, notice_at = notice_at - 604800000000",
                )
                .await
            }
            _ => {
                sql(
                    app,
                    "update access_tokens set expires_at = expires_at - interval '5 days 12 hours', notice_at = notice_at - interval '5 days 12 hours'",
                    "update access_tokens set expires_at = expires_at - 475200000000, notice_at = notice_at - 475200000000",
                )
                .await
            }
        }
    }
    let told = |days: i64| {
        receiver
            .of_type("token.expiring")
            .into_iter()
            .filter(|r| r.event()["data"]["expires_in_days"] == days)
            .count()
    };
    // 20 days left: nothing yet. 13 days: the 14-day warning. 6 days: 7. 12 hours: 1.
    // (`days_pass(5)` moves five and a half days.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.got().is_empty());
    days_pass(&app, 7).await;
    assert!(eventually(30, || async { told(14) == 20 }).await);
    days_pass(&app, 7).await;
    assert!(eventually(30, || async { told(7) == 20 }).await);
    days_pass(&app, 5).await;
    assert!(eventually(30, || async { told(1) == 20 }).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!((told(14), told(7), told(1)), (20, 20, 20));
    assert!(receiver.of_type("token.expired").is_empty());
}

#[tokio::test]
async fn addresses_inside_the_network_are_refused_at_creation_and_at_delivery() {
    let strict = TestApp::spawn_with(|s| {
        s.webhooks.allow_private = false;
        s.webhooks.allow_insecure = false;
    })
    .await;
    let owner = strict.owner();
    for (url, says) in [
        ("http://127.0.0.1:8080/hook", "https://"),
        ("https://127.0.0.1/hook", "127.0.0.1"),
        (
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254",
        ),
        ("https://[::1]/hook", "::1"),
        ("https://10.0.0.7/hook", "10.0.0.7"),
        ("https://[::ffff:192.168.0.1]/hook", "192.168"),
        ("https://localhost/hook", "resolves"),
        ("https://user:secret@203.0.114.9/hook", "credentials"),
        ("ftp://example.com/hook", "https://"),
        ("not a url", "not a URL"),
    ] {
        let response = create_endpoint(&strict, &owner, json!({ "url": url })).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(says), "{url}: {message}");
    }
    let unknown = create_endpoint(
        &strict,
        &owner,
        json!({"url": "https://8.8.8.8/hook", "events": ["token.exploded"]}),
    )
    .await;
    assert!(
        assert_error(unknown, StatusCode::BAD_REQUEST)
            .await
            .contains("token.exploded")
    );
    drop(strict);

    // An endpoint that a replica allowing private addresses accepted is still refused at
    // delivery by a replica that does not.
    let mut open = TestApp::spawn().await;
    let (receiver, address) = Receiver::start().await;
    let (id, _) = endpoint(&open, &format!("http://{address}/hook"), None).await;
    open.stop();
    if let Some(stopped) = open.stopped.take() {
        let _ = stopped.await;
    }
    let closed = open
        .replica_with(|s| s.webhooks.allow_private = false)
        .await;
    closed
        .create_ok(&closed.owner(), json!({"name": "x"}))
        .await;
    assert!(
        eventually(30, || async {
            deliveries(&closed, &id)
                .await
                .first()
                .is_some_and(|d| d["error"].is_string())
        })
        .await
    );
    let refused = deliveries(&closed, &id).await[0].clone();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{refused}"
    );
    assert!(receiver.got().is_empty());
}

#[tokio::test]
async fn endpoints_belong_to_their_organizations_admins() {
    let app = TestApp::spawn().await;
    let (receiver, address) = Receiver::start().await;
    let url = format!("http://{address}/hook");
    let member = app.caller("1", &["1:viewer"]);
    let response = create_endpoint(&app, &member, json!({ "url": url })).await;
    assert!(
        assert_error(response, StatusCode::FORBIDDEN)
            .await
            .contains("TOKEN_ADMIN_ROLES")
    );
    let (id, secret) = endpoint(&app, &url, Some(&["token.created"])).await;

    // Shown without its secret; not to a member; not to another organization.
    let shown: Value = get_json(
        &app,
        &app.owner(),
        &format!("/v1/access-tokens/webhooks/{id}"),
    )
    .await;
    assert_eq!(shown["url"], url.as_str());
    assert_eq!(shown["events"], json!(["token.created"]));
    assert!(shown.get("secret").is_none());
    let listed: Value = get_json(&app, &app.owner(), "/v1/access-tokens/webhooks").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let stranger = app.caller("2", &["2:owner"]);
    for (method, path) in [
        ("GET", format!("/v1/access-tokens/webhooks/{id}")),
        ("DELETE", format!("/v1/access-tokens/webhooks/{id}")),
        (
            "POST",
            format!("/v1/access-tokens/webhooks/{id}/rotate-secret"),
        ),
        ("GET", format!("/v1/access-tokens/webhooks/{id}/deliveries")),
    ] {
        let request = match method {
            "GET" => app.client.get(app.url(&path)),
            "DELETE" => app.client.delete(app.url(&path)),
            _ => app.client.post(app.url(&path)),
        };
        let response = request.bearer_auth(&stranger).send().await.unwrap();
        assert_error(response, StatusCode::NOT_FOUND).await;
        let response = match method {
            "GET" => app.client.get(app.url(&path)),
            "DELETE" => app.client.delete(app.url(&path)),
            _ => app.client.post(app.url(&path)),
        }
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
        assert_error(response, StatusCode::FORBIDDEN).await;
    }
    let theirs: Value = get_json(&app, &stranger, "/v1/access-tokens/webhooks").await;
    assert_eq!(theirs, json!([]));
    // Organization 2's tokens never reach organization 1's endpoint.
    app.create_ok(&stranger, json!({"name": "elsewhere"})).await;

    // A rotated secret: both sign for a day.
    let rotated = post(
        &app,
        &app.owner(),
        &format!("/v1/access-tokens/webhooks/{id}/rotate-secret"),
    )
    .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_secret = rotated.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    app.create_ok(&app.owner(), json!({"name": "after rotation"}))
        .await;
    assert!(eventually(30, || async { receiver.got().len() == 1 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.got();
    assert_eq!(
        got.len(),
        1,
        "organization 2's token is not told to organization 1"
    );
    assert!(signed_by(&got[0], &new_secret) && signed_by(&got[0], &secret));
    assert_eq!(got[0].signature.split(' ').count(), 2);

    // Each change of the endpoint is in the audit trail, for admins.
    let events = app.audit_events(&app.owner(), "?limit=100").await;
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("webhook_")))
        .collect();
    assert_eq!(actions, ["webhook_secret_rotated", "webhook_created"]);
    let created = events
        .iter()
        .find(|e| e["action"] == "webhook_created")
        .unwrap();
    assert_eq!(created["details"]["id"], id.as_str());
    assert_eq!(created["details"]["url"], url.as_str());
    assert!(created["token_id"].is_null());
    assert!(
        app.audit_events(&member, "?limit=100")
            .await
            .iter()
            .all(|e| !e["action"].as_str().unwrap().starts_with("webhook_"))
    );
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/access-tokens/webhooks/{id}")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app
        .client
        .get(app.url(&format!("/v1/access-tokens/webhooks/{id}")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_error(gone, StatusCode::NOT_FOUND).await;
    let last = app.audit_events(&app.owner(), "?limit=1").await;
    assert_eq!(last[0]["action"], "webhook_deleted");
}

#[tokio::test]
async fn an_endpoint_failing_for_three_days_is_disabled_and_the_others_are_told() {
    let app = TestApp::spawn().await;
    let (failing, failing_address) = Receiver::start().await;
    failing.behaviour.lock().unwrap().status = Some(500);
    let (healthy, healthy_address) = Receiver::start().await;
    let (bad, _) = endpoint(
        &app,
        &format!("http://{failing_address}/hook"),
        Some(&["token.created"]),
    )
    .await;
    endpoint(
        &app,
        &format!("http://{healthy_address}/hook"),
        Some(&["webhook.disabled"]),
    )
    .await;
    // It has been failing for four days.
    sql(
        &app,
        "update webhook_endpoints set failing_since = now() - interval '4 days' where url like '%/hook' and events = ',token.created,'",
        "update webhook_endpoints set failing_since = 1 where events = ',token.created,'",
    )
    .await;
    app.create_ok(&app.owner(), json!({"name": "x"})).await;
    assert!(eventually(30, || async { !healthy.got().is_empty() }).await);
    let told = healthy.got()[0].event();
    assert_eq!(told["type"], "webhook.disabled");
    assert_eq!(told["subject"], bad.as_str());
    let shown: Value = get_json(
        &app,
        &app.owner(),
        &format!("/v1/access-tokens/webhooks/{bad}"),
    )
    .await;
    assert_eq!(shown["enabled"], false);
    assert!(shown["disabled_at"].is_string());
    let given_up = deliveries(&app, &bad).await[0].clone();
    assert_eq!(given_up["response_status"], 500);
    // Nothing is sent to a disabled endpoint: its queue is given up, not left pending.
    assert_eq!(given_up["status"], "failed", "{given_up}");
    assert_eq!(given_up["error"], "the endpoint was disabled");

    // A delivery failing a day after its event is given up.
    sql(
        &app,
        "update webhook_endpoints set enabled = true, failing_since = null",
        "update webhook_endpoints set enabled = 1, failing_since = null",
    )
    .await;
    sql(
        &app,
        "update webhook_deliveries set status = 'pending', created_at = now() - interval '25 hours', next_attempt_at = now()",
        "update webhook_deliveries set status = 'pending', created_at = 1, next_attempt_at = 1",
    )
    .await;
    assert!(
        eventually(30, || async {
            let d = deliveries(&app, &bad).await[0].clone();
            d["status"] == "failed" && d["error"] == "answered 500"
        })
        .await
    );
}

#[tokio::test]
async fn a_cascade_is_told_for_every_token_with_its_reason() {
    let app = TestApp::spawn().await;
    let (receiver, _) = subscribed(&app, Some(&["token.revoked"])).await;
    let parent = app.create_ok(&app.owner(), json!({"name": "parent"})).await;
    let child = app
        .create_ok(parent["token"].as_str().unwrap(), json!({"name": "child"}))
        .await;
    let response = app
        .client
        .delete(app.url(&format!(
            "/v1/access-tokens/{}?cascade=true",
            parent["id"].as_str().unwrap()
        )))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(eventually(30, || async { receiver.got().len() == 2 }).await);
    let reason_of = |id: &Value| {
        receiver
            .got()
            .iter()
            .map(Received::event)
            .find(|e| e["subject"] == *id)
            .unwrap()["data"]["reason"]
            .clone()
    };
    assert_eq!(reason_of(&parent["id"]), "revoked");
    assert_eq!(reason_of(&child["id"]), "cascade");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::spawn().await;
    let (elsewhere, elsewhere_address) = Receiver::start().await;
    let (redirecting, address) = Receiver::start().await;
    {
        let mut b = redirecting.behaviour.lock().unwrap();
        b.status = Some(307);
        b.location = Some(format!("http://{elsewhere_address}/hook"));
    }
    let (id, _) = endpoint(&app, &format!("http://{address}/hook"), None).await;
    app.create_ok(&app.owner(), json!({"name": "x"})).await;
    assert!(
        eventually(30, || async {
            deliveries(&app, &id)
                .await
                .first()
                .is_some_and(|d| d["response_status"] == 307)
        })
        .await
    );
    let delivery = deliveries(&app, &id).await[0].clone();
    assert_eq!(
        delivery["status"], "pending",
        "a redirect is a failed attempt"
    );
    assert_eq!(redirecting.got().len(), 1);
    assert!(elsewhere.got().is_empty());
}

#[tokio::test]
async fn the_expiry_scan_reads_the_due_tokens_from_their_index() {
    if !crate::helpers::runs_on(StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    app.seed("1", 20_000).await;
    let pool = app.pool();
    // A few hundred tokens with an expiry, ten of them due.
    sqlx::query(
        "update access_tokens set expires_at = now() + interval '30 days',
             notice_at = now() + (random() * 30) * interval '1 day'
         where id in (select id from access_tokens order by id limit 300)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("analyze access_tokens")
        .execute(&pool)
        .await
        .unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("set plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: (Value,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "explain (format json) {}",
            access_tokens::store::DUE_NOTICE_SQL
        )))
        .bind(chrono::Utc::now())
        .bind(200_i64)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let text = plan.0.to_string();
        assert!(text.contains("access_tokens_notice"), "{mode}: {text}");
        assert!(!text.contains("Seq Scan"), "{mode}: {text}");
        assert!(!text.contains("\"Node Type\":\"Sort\""), "{mode}: {text}");
    }
}

#[tokio::test]
async fn a_tokens_events_arrive_in_order_even_when_the_first_is_retried() {
    let app = TestApp::spawn().await;
    let (receiver, id) = subscribed(&app, None).await;
    receiver.behaviour.lock().unwrap().fail_first = 1;
    let token = app
        .create_ok(&app.owner(), json!({"name": "ordered"}))
        .await;
    let token_id = token["id"].as_str().unwrap();
    // The creation's first attempt fails; the revocation comes meanwhile.
    assert!(eventually(30, || async { !receiver.got().is_empty() }).await);
    assert_eq!(
        app.revoke(&app.owner(), token_id).await.status(),
        StatusCode::OK
    );
    assert!(eventually(60, || async { receiver.got().len() >= 3 }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = receiver
        .got()
        .iter()
        .map(|r| r.event()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["token.created", "token.created", "token.revoked"]);
    let list = deliveries(&app, &id).await;
    assert!(list.iter().all(|d| d["status"] == "delivered"), "{list:?}");
}

#[tokio::test]
async fn a_token_reported_by_whoever_holds_it_is_told_with_the_reason() {
    let app = TestApp::spawn().await;
    let (receiver, _) = subscribed(&app, Some(&["token.revoked"])).await;
    let leaked = app.create_ok(&app.owner(), json!({"name": "leaked"})).await;
    let response = app
        .client
        .post(app.url("/v1/access-tokens/revoke"))
        .json(&json!({ "tokens": [leaked["token"]] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(eventually(30, || async { receiver.got().len() == 1 }).await);
    let event = receiver.got()[0].event();
    assert_eq!(event["subject"], leaked["id"]);
    assert_eq!(event["data"]["reason"], "reported");
    assert!(event["data"].get("leak").is_none());
}

#[tokio::test]
async fn deliveries_done_with_are_deleted_after_thirty_days() {
    let app = TestApp::spawn().await;
    let (receiver, id) = subscribed(&app, None).await;
    app.create_ok(&app.owner(), json!({"name": "old news"}))
        .await;
    app.create_ok(&app.owner(), json!({"name": "still due"}))
        .await;
    assert!(
        eventually(30, || async {
            let list = deliveries(&app, &id).await;
            list.len() == 2 && list.iter().all(|d| d["status"] == "delivered")
        })
        .await
    );
    // Both a month old, and (in the same statement, so that no scan sees them between) the newer
    // pending again, its retry an hour away: it stays.
    sql(
        &app,
        "update webhook_deliveries set created_at = now() - interval '31 days',
             status = case when id = (select max(id) from webhook_deliveries) then 'pending' else status end,
             next_attempt_at = case when id = (select max(id) from webhook_deliveries)
                 then now() + interval '1 hour' else next_attempt_at end",
        "update webhook_deliveries set created_at = 1,
             status = case when id = (select max(id) from webhook_deliveries) then 'pending' else status end,
             next_attempt_at = case when id = (select max(id) from webhook_deliveries)
                 then 9000000000000000 else next_attempt_at end",
    )
    .await;
    assert!(
        eventually(30, || async { deliveries(&app, &id).await.len() == 1 }).await,
        "{:?}",
        deliveries(&app, &id).await
    );
    assert_eq!(deliveries(&app, &id).await[0]["status"], "pending");
    assert_eq!(receiver.got().len(), 2);
}
