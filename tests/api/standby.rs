//! Reads served by a read standby (`DATABASE_READ_URL`): token lists and gets, audit events and
//! the policy read there once the standby has replayed the caller's writes, and served by the
//! primary when the standby is away. The first test needs a real streaming standby of the test
//! server (`TEST_STANDBY_URL`; `scripts/scale/test-database.sh` gives it one) and says so when it has none.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

use crate::helpers::{TestApp, direct_options, standby_options};
use crate::policy::policy_of;

/// Creates a token, changes the policy, and reads each back at once: list, get, audit, policy.
async fn writes_then_reads(app: &TestApp) {
    let owner = app.owner();
    for round in 0..5 {
        let created = app
            .create_ok(&owner, json!({"name": format!("read back {round}")}))
            .await;
        let id = created["id"].as_str().unwrap();
        let listed = app.list_ok(&owner, "").await;
        assert_eq!(listed[0]["id"], created["id"], "round {round}: {listed:?}");
        let got = app.get_token(&owner, id).await;
        assert_eq!(got.status(), StatusCode::OK, "round {round}");
        let events = app.audit_events(&owner, &format!("?token_id={id}")).await;
        assert_eq!(events.len(), 1, "round {round}: {events:?}");
        assert_eq!(events[0]["action"], "created");

        let revoked = app.revoke(&owner, id).await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let got: Value = app.get_token(&owner, id).await.json().await.unwrap();
        assert_eq!(got["status"], "revoked", "round {round}: {got}");
        assert!(
            app.list_ok(&owner, "").await.iter().all(|t| t["id"] != id),
            "round {round}: a revoked token is left out at once"
        );

        let limit = 86_400 * (round + 1);
        app.set_policy(json!({"max_expires_in": {"app": limit}}))
            .await;
        let policy = policy_of(app, &owner).await;
        assert_eq!(policy["max_expires_in"]["app"], limit, "round {round}");
    }
}

/// The service's connections to database `name` on the server of `server`.
async fn connections(server: &PgConnectOptions, name: &str) -> i64 {
    let pool = sqlx::PgPool::connect_lazy_with(server.clone().database("postgres"));
    let count = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    count
}

#[tokio::test]
async fn a_caller_reads_its_own_writes_at_once_from_the_standby() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let Some(standby) = standby_options() else {
        eprintln!(
            "skipped: TEST_STANDBY_URL names no standby of the test server \
             (scripts/scale/test-database.sh runs this test with one)"
        );
        return;
    };
    let app = TestApp::spawn().await;
    let name = direct_options(&app.database)
        .get_database()
        .unwrap()
        .to_owned();
    writes_then_reads(&app).await;
    // The reads were the standby's: the service holds connections to the test database there.
    assert!(
        connections(&standby, &name).await > 0,
        "the service never connected to the standby"
    );
    // A second replica (another process behind the balancer) reads the first one's writes too.
    let replica = app.replica().await;
    let owner = app.owner();
    let created = app.create_ok(&owner, json!({"name": "elsewhere"})).await;
    let listed = replica.list_ok(&replica.owner(), "").await;
    assert_eq!(listed[0]["id"], created["id"]);
}

#[tokio::test]
async fn reads_are_served_by_the_primary_while_the_standby_is_away() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    // A standby address where nothing listens: every attempt is refused.
    let away = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = TestApp::spawn_with(|settings| {
        if let access_tokens::config::Database::Postgres(pg) = &mut settings.database {
            let name = pg.options.get_database().unwrap().to_owned();
            pg.read = Some(
                PgConnectOptions::new()
                    .host("127.0.0.1")
                    .port(away)
                    .username("postgres")
                    .database(&name)
                    .ssl_mode(sqlx::postgres::PgSslMode::Disable),
            );
        }
    })
    .await;
    writes_then_reads(&app).await;
    // Still answering after the standby's rest is over and it is tried again.
    tokio::time::sleep(access_tokens::store::standby::AWAY_FOR + Duration::from_millis(200)).await;
    writes_then_reads(&app).await;
}
