//! What only PostgreSQL has: query plans, row versions, a server that can go away, replicas
//! racing to create the first keys, and a revocation feed that can be lost. (The embedded store serves one process on a local file.)

use access_tokens::App;
use access_tokens::keys::KeyEncryptionKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Forwarder, TestApp, assert_error, eventually, fresh_database, settings};
use crate::status_lists::{status_at, status_of_token};

#[tokio::test]
async fn a_page_is_one_index_range_scan_however_large_the_table() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    app.seed("1", 10_000).await;
    for org in 2..12 {
        app.seed(&org.to_string(), 5_000).await;
    }
    let pool = app.pool();
    sqlx::query("update access_tokens set revoked_at = now() where org_id = '1' and created_at < '2026-01-01 00:10:00'")
        .execute(&pool)
        .await
        .unwrap();
    // A member who owns a few of organization 1's tokens (seeded ones are owned by `p1_seed`),
    // some of them from before principals (a legacy key).
    sqlx::query("update access_tokens set created_by = 'member', owner = 'p1_member' where org_id = '1' and created_at >= '2026-01-01 00:50:00'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("update access_tokens set owner = 'legacy:1:1:member' where org_id = '1' and created_at >= '2026-01-01 00:55:00'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("analyze access_tokens")
        .execute(&pool)
        .await
        .unwrap();
    use access_tokens::store::postgres::list_sql;
    use access_tokens::tokens::TokenStatus::Active;
    // The organization's list (an admin's), and one member's (the tokens its keys own).
    for (mode, owned, index) in [
        ("force_custom_plan", false, "access_tokens_org_unrevoked"),
        ("force_generic_plan", false, "access_tokens_org_unrevoked"),
        ("force_custom_plan", true, "access_tokens_org_owner"),
        ("force_generic_plan", true, "access_tokens_org_owner"),
    ] {
        let sql = list_sql(Active, owned);
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("set plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        let cursor_time = chrono::DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let query = sqlx::query_as(sqlx::AssertSqlSafe(format!("explain (format json) {sql}")))
            .bind("1")
            .bind(None::<Vec<String>>)
            .bind(None::<String>)
            .bind(cursor_time)
            .bind("api_seed")
            .bind(101_i64)
            .bind(chrono::Utc::now())
            .bind(None::<String>);
        let query = if owned {
            query.bind("p1_member").bind("legacy:1:1:member")
        } else {
            query
        };
        let plan: (Value,) = query.fetch_one(&mut *conn).await.unwrap();
        let text = plan.0.to_string();
        assert!(text.contains(index), "{mode}, owned {owned}: {text}");
        assert!(text.contains("\"Index Cond\""), "{mode}: {text}");
        assert!(
            !text.contains("\"Node Type\":\"Sort\""),
            "{mode}: no sort: {text}"
        );
        assert!(!text.contains("Seq Scan"), "{mode}: {text}");
        // The position is part of the index condition, not a filter applied after reading.
        let conditions: Vec<&str> = text
            .split("\"Index Cond\":\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or_default())
            .collect();
        assert!(!conditions.is_empty(), "{mode}: {text}");
        for cond in conditions {
            assert!(
                cond.contains("created_at") && cond.contains("org_id"),
                "{mode}: {cond} in {text}"
            );
            if owned {
                assert!(cond.contains("owner"), "{mode}: {cond} in {text}");
            }
        }
    }
}

#[tokio::test]
async fn replicas_starting_together_on_an_empty_database_agree_on_one_key_per_set() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let database = fresh_database().await;
    let kek = KeyEncryptionKey::generate();
    let starts = (0..3).map(|_| {
        let settings = settings(database.clone(), kek.clone(), vec![]);
        tokio::spawn(async move { App::build(settings).await.map(|app| app.address()) })
    });
    for start in starts {
        start.await.unwrap().expect("every replica starts");
    }
    let pool = sqlx::PgPool::connect_lazy_with(crate::helpers::direct_options(&database));
    let keys: Vec<(String, i64)> = sqlx::query_as(
        "select key_set, count(*) from signing_keys group by key_set order by key_set",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys.len(), 4);
    assert!(
        keys.iter().all(|(_, n)| *n == 2),
        "one active and one next key per set: {keys:?}"
    );
}

/// Takes `app`'s database away (no connection allowed, every one closed), or brings it back.
async fn database_away(app: &TestApp, away: bool) {
    let admin = sqlx::PgPool::connect_lazy_with(crate::helpers::admin_options());
    let name = crate::helpers::direct_options(&app.database)
        .get_database()
        .unwrap()
        .to_owned();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database {name} with allow_connections {}",
        !away
    )))
    .execute(&admin)
    .await
    .unwrap();
    if away {
        sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
            .bind(&name)
            .execute(&admin)
            .await
            .unwrap();
    }
    admin.close().await;
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_promptly_and_the_service_recovers_by_itself() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);

    // The database goes away: live stays up, ready says 503 with the JSON body.
    database_away(&app, true).await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    assert_error(
        app.get("/health/ready").await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    // JWKS keeps answering from memory.
    assert_eq!(
        app.get("/v1/access-tokens/.well-known/jwks.json")
            .await
            .status(),
        StatusCode::OK
    );
    // Requests that need the database answer 503 with the JSON body, promptly, not a hang.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        assert_error(
            app.create(&app.owner(), json!({"name": "while away"}))
                .await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        // The pool gives up after 2 s, the request after 30 s: 15 s tells them apart.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "within the 2 s acquire timeout, not the request timeout: {:?}",
            started.elapsed()
        );
    }

    // While requests wait for a connection that cannot be made, the pool's waiting gauge counts
    // them (each wait lasts up to the 2 s acquire timeout; a new one is sent until it is seen).
    assert!(
        eventually(30, || async {
            let app = &app;
            let waiting = async {
                let mut seen = 0.0;
                for _ in 0..20 {
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                    seen = metric(app, "access_tokens_db_pool_waiting_requests").await;
                    if seen >= 1.0 {
                        break;
                    }
                }
                seen
            };
            let owner = app.owner();
            let (_, seen) = tokio::join!(app.create(&owner, json!({"name": "waits"})), waiting);
            seen >= 1.0
        })
        .await
    );

    // The database comes back: the service recovers by itself, without a restart.
    database_away(&app, false).await;
    assert!(
        eventually(30, || async {
            app.get("/health/ready").await.status() == StatusCode::OK
        })
        .await
    );
    let created = app.create_ok(&app.owner(), json!({"name": "after"})).await;
    assert_eq!(app.list_ok(&app.owner(), "").await[0]["id"], created["id"]);
    // Nothing waits once it is back (the background work waited too while it was away).
    assert!(
        eventually(30, || async {
            metric(&app, "access_tokens_db_pool_waiting_requests").await == 0.0
        })
        .await
    );
}

#[tokio::test]
async fn last_used_is_written_once_a_day_however_many_uses() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    let created = app.create_ok(&app.owner(), json!({"name": "busy"})).await;
    let jwt = created["token"].as_str().unwrap();
    let token_id = created["id"].as_str().unwrap().to_owned();
    app.list(jwt, "").await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    assert!(
        eventually(30, || async {
            let item: Value = app
                .get_token(&app.owner(), &token_id)
                .await
                .json()
                .await
                .unwrap();
            item["last_used"] == today.as_str()
        })
        .await
    );
    // The row's version (xmin) changes with every write to it.
    let version = || async {
        let (xmin,): (String,) =
            sqlx::query_as("select xmin::text from access_tokens where id = $1")
                .bind(&token_id)
                .fetch_one(&app.pool())
                .await
                .unwrap();
        xmin
    };
    let before = version().await;
    for _ in 0..20 {
        app.list(jwt, "").await;
        app.introspect(jwt).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(version().await, before, "no second write on the same day");
}

/// The backends of the inserts waiting on a lock.
async fn inserts_waiting(pool: &sqlx::PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "select pid from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'
           and query like 'with v as (%'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn creations_that_arrive_together_share_a_commit_and_a_refused_row_fails_alone() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let pool = app.pool();
    // A rule of this database only, refusing one name: a row the database refuses.
    sqlx::query("alter table access_tokens add constraint refuse_one check (name <> 'refused')")
        .execute(&pool)
        .await
        .unwrap();

    for round in ["together", "one refused"] {
        // The writer takes the first creation and waits on the lock; the rest queue behind it.
        let mut lock = pool.begin().await.unwrap();
        sqlx::query("lock table access_tokens in share row exclusive mode")
            .execute(&mut *lock)
            .await
            .unwrap();
        let name = |i: usize| {
            if round == "one refused" && i == 7 {
                "refused".to_owned()
            } else {
                format!("{round} {i}")
            }
        };
        let first = app.create(&owner, json!({"name": format!("{round} first")}));
        let rest = async {
            assert!(eventually(30, || async { inserts_waiting(&pool).await.len() == 1 }).await);
            futures_util::future::join_all(
                (0..30).map(|i| app.create(&owner, json!({"name": name(i)}))),
            )
            .await
        };
        let release = async {
            assert!(eventually(30, || async { inserts_waiting(&pool).await.len() == 1 }).await);
            // Time for the 30 requests to be authenticated, signed and queued (those that are
            // not queued by then are written in more groups, which the assertion allows).
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            lock.commit().await.unwrap();
        };
        let (first, rest, ()) = tokio::join!(first, rest, release);

        assert_eq!(first.status(), StatusCode::CREATED);
        let mut created = Vec::new();
        for (i, response) in rest.into_iter().enumerate() {
            if name(i) == "refused" {
                assert_error(response, StatusCode::INTERNAL_SERVER_ERROR).await;
            } else {
                assert_eq!(response.status(), StatusCode::CREATED, "{round} {i}");
                let body: Value = response.json().await.unwrap();
                created.push(body["id"].as_str().unwrap().to_owned());
            }
        }
        // Every answered token has its row and exactly one `created` event.
        let (rows, events, commits): (i64, i64, i64) = sqlx::query_as(
            "select count(*),
                    (select count(*) from audit_events
                     where action = 'created' and token_id = any($1)),
                    count(distinct xmin::text)
             from access_tokens where id = any($1)",
        )
        .bind(&created)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(rows as usize, created.len(), "{round}");
        assert_eq!(events as usize, created.len(), "{round}");
        match round {
            // The 30 were written by fewer statements than rows.
            "together" => assert!(commits < 30, "{commits} commits for 30 rows"),
            // The group holding the refused row wrote nothing; its rows were then written alone.
            _ => assert_eq!(rows, 29),
        }
    }
    assert_eq!(
        app.count(
            "select count(*) from access_tokens where name = $1",
            "refused"
        )
        .await,
        0
    );
}

/// The backend of the insert waiting on a lock, once there is one and it is not `other`.
async fn insert_waiting_on_a_lock(pool: &sqlx::PgPool, other: Option<i32>) -> i32 {
    let found = std::sync::Mutex::new(None);
    assert!(
        eventually(30, || async {
            let pid = inserts_waiting(pool)
                .await
                .into_iter()
                .find(|pid| Some(*pid) != other);
            *found.lock().unwrap() = pid;
            pid.is_some()
        })
        .await
    );
    found.into_inner().unwrap().unwrap()
}

#[tokio::test]
async fn a_group_whose_held_connection_is_closed_is_written_on_another() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let pool = app.pool();
    // The first creation waits on the table; the second (a journey token: another signing key)
    // queues behind it, then waits on its signing key's row, on the connection the writer kept.
    let mut table = pool.begin().await.unwrap();
    sqlx::query("lock table access_tokens in share row exclusive mode")
        .execute(&mut *table)
        .await
        .unwrap();
    let mut key = pool.begin().await.unwrap();
    sqlx::query("select 1 from signing_keys where key_set = 'public' for update")
        .execute(&mut *key)
        .await
        .unwrap();
    let first = app.create(&owner, json!({"name": "first"}));
    let second = async {
        insert_waiting_on_a_lock(&pool, None).await;
        app.create(
            &owner,
            json!({"name": "second", "token_type": "journey", "journey_id": "j1"}),
        )
        .await
    };
    let locks = async {
        insert_waiting_on_a_lock(&pool, None).await;
        assert!(
            eventually(30, || async {
                metric(&app, "access_tokens_token_create_queued").await == 1.0
            })
            .await
        );
        table.commit().await.unwrap();
        // The first written, the writer has taken the second (the one its kept connection now
        // waits with, for the key): the server ends that session.
        assert!(
            eventually(30, || async {
                metric(&app, "access_tokens_token_create_queued").await == 0.0
            })
            .await
        );
        let kept = insert_waiting_on_a_lock(&pool, None).await;
        let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
            .bind(kept)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(ended);
        // The group is written again, on a connection from the pool.
        insert_waiting_on_a_lock(&pool, Some(kept)).await;
        key.commit().await.unwrap();
    };
    let (first, second, ()) = tokio::join!(first, second, locks);

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.unwrap();
    let id = second["id"].as_str().unwrap();
    assert_eq!(
        app.count("select count(*) from access_tokens where id = $1", id)
            .await,
        1
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_events where action = 'created' and token_id = $1",
            id
        )
        .await,
        1
    );
    assert_eq!(metric(&app, "access_tokens_token_create_queued").await, 0.0);
}

#[tokio::test]
async fn a_truncated_token_table_leaves_every_token_revoked() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let created = a.create_ok(&a.owner(), json!({"name": "truncated"})).await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(b.list(jwt, "").await.status(), StatusCode::OK);

    a.execute("truncate access_tokens").await;
    for app in [&a, &b] {
        let refused = eventually(30, || async {
            app.list(jwt, "").await.status() == StatusCode::UNAUTHORIZED
                && app.introspect(jwt).await["active"] == false
        })
        .await;
        assert!(refused, "a truncated token is refused on every replica");
    }
    let started_later = a.replica().await;
    assert_eq!(
        started_later.list(jwt, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The value of the unlabelled series `name` on the replica's metrics listener.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let base = app.metrics_base.as_ref().expect("metrics are on in tests");
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not exposed"))
}

async fn listener_up(app: &TestApp) -> bool {
    metric(app, "access_tokens_revocation_listener_up").await == 1.0
}

#[tokio::test]
async fn while_its_revocation_feed_is_down_a_replica_still_lists_other_replicas_revocations() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let first = TestApp::spawn().await;
    // The second replica's sessions (its LISTEN) go through a forwarder the test can cut; its
    // pool goes to the database as before.
    let direct = crate::helpers::direct_options(&first.database);
    let server: std::net::SocketAddr = format!("{}:{}", direct.get_host(), direct.get_port())
        .parse()
        .expect("the test server is an IP address and port");
    let forwarder = Forwarder::start(server).await;
    let port = forwarder.port;
    let second = first
        .replica_with(|settings| {
            if let access_tokens::config::Database::Postgres(pg) = &mut settings.database {
                pg.session = Some(pg.session_options().clone().host("127.0.0.1").port(port));
            }
        })
        .await;
    assert!(
        eventually(30, || async { listener_up(&second).await }).await,
        "the second replica's listener connects through the forwarder"
    );

    let owner = first.owner();
    let created = first.create_ok(&owner, json!({"name": "gated"})).await;
    let (idx, uri) = status_of_token(&first, "", &created).await;
    assert_eq!(status_at(&second, "", &uri, idx).await, 0);

    forwarder.cut();
    assert!(
        eventually(30, || async { !listener_up(&second).await }).await,
        "the second replica sees its listener gone"
    );
    let response = first.revoke(&owner, created["id"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    // No notification reaches the second replica, and its lists would otherwise wait for their
    // next re-signing (five minutes at this ttl); it reads them again every refresh instead.
    assert!(
        eventually(30, || async {
            status_at(&second, "", &uri, idx).await == 1
        })
        .await,
        "the revocation is in the lists of the replica whose feed is down"
    );
    // And it refuses the token as a caller, reading the row.
    let caller = created["token"].as_str().unwrap();
    assert_eq!(
        second.list(caller, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn through_a_database_outage_the_lists_are_signed_again_as_they_are() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    // Valid for ten ttls (10 s), signed again when half of that is gone.
    let app = TestApp::spawn_with(|s| s.status_list_ttl = std::time::Duration::from_secs(1)).await;
    let owner = app.owner();
    let created = app
        .create_ok(&owner, json!({"name": "revoked before"}))
        .await;
    let (idx, uri) = status_of_token(&app, "", &created).await;
    let response = app.revoke(&owner, created["id"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(eventually(30, || async { status_at(&app, "", &uri, idx).await == 1 }).await);
    let path = uri.strip_prefix(&app.public_url).unwrap().to_owned();
    let iat = |jwt: &str| -> i64 {
        use base64::Engine;
        let payload = jwt.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["iat"]
            .as_i64()
            .unwrap()
    };
    let before = iat(&app.get(&path).await.text().await.unwrap());

    database_away(&app, true).await;
    // Past the first list's exp: a list signed after the outage began is served, it verifies
    // against the JWKS (served from memory) and still shows the revocation.
    assert!(
        eventually(60, || async {
            iat(&app.get(&path).await.text().await.unwrap()) > before + 10
        })
        .await,
        "the lists are signed again while the database is away"
    );
    assert_eq!(status_at(&app, "", &uri, idx).await, 1);
    // The renders that failed meanwhile are counted.
    assert!(metric(&app, "access_tokens_status_list_render_failures_total").await >= 1.0);
    database_away(&app, false).await;
}

#[test]
fn a_database_that_cannot_be_used_says_what_happened_and_the_fix() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let admin = crate::helpers::admin_options();
    let server = format!("{}:{}", admin.get_host(), admin.get_port());
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let user = admin.get_username().to_owned();
    for (url, expected) in [
        (
            format!("postgres://{user}@{server}/at_test_never_created?sslmode=disable"),
            "the database \"at_test_never_created\" does not exist",
        ),
        (
            format!("postgres://{user}@127.0.0.1:{refused_port}/x?sslmode=disable"),
            "refused the connection",
        ),
    ] {
        let output = crate::binary::command()
            .args(["serve", "--database-url", &url])
            .env("KEY_ENCRYPTION_KEY", crate::helpers::test_kek_base64())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert!(
            !stderr.contains("pool timed out") && !stderr.contains("at line"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_statement_waiting_past_the_statement_timeout_is_cancelled_and_writes_nothing() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    // REQUEST_TIMEOUT sets the service pool's statement_timeout; here 1 s, under the request's.
    // Behind a transaction pooler the service sends none (the pooler's query_timeout does it).
    if std::env::var("TEST_PGBOUNCER_URL").is_ok_and(|url| !url.trim().is_empty()) {
        eprintln!("skipped: behind a transaction pooler the service sets no statement_timeout");
        return;
    }
    let app = TestApp::spawn_with(|s| {
        if let access_tokens::config::Database::Postgres(pg) = &mut s.database {
            pg.statement_timeout = Some(std::time::Duration::from_secs(1));
        }
    })
    .await;
    let token = app.create_ok(&app.owner(), json!({"name": "locked"})).await;
    let id = token["id"].as_str().unwrap().to_owned();
    // Another session holds the token's row: the revoke's statement waits on the lock.
    let pool = app.pool();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("select id from access_tokens where id = $1 for update")
        .bind(&id)
        .execute(&mut *holder)
        .await
        .unwrap();
    // The server cancels it (57014, query_canceled): 503, not the request timeout's 408 at 30 s.
    assert_error(
        app.revoke(&app.owner(), &id).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    holder.rollback().await.unwrap();
    let item: Value = app.get_token(&app.owner(), &id).await.json().await.unwrap();
    assert_eq!(item["status"], "active", "nothing was half-written");
    // Once the lock is gone, the same revoke succeeds.
    assert_eq!(app.revoke(&app.owner(), &id).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cascade_past_its_bounds_is_a_409_and_revokes_nothing() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let app = TestApp::spawn().await;
    let root = app.create_ok(&app.owner(), json!({"name": "root"})).await;
    let root_id = root["id"].as_str().unwrap().to_owned();
    // 70 tokens in a chain below it: deeper than a cascade walks (64 levels).
    app.seed("1", 70).await;
    let pool = app.pool();
    sqlx::query(
        "update access_tokens set parent_id = case
             when id = 'api_seed' || lpad('1', 16, '0') || '1' then $1
             else 'api_seed' || lpad((substr(id, 9, 16)::int - 1)::text, 16, '0') || '1' end
         where id like 'api\\_seed%'",
    )
    .bind(&root_id)
    .execute(&pool)
    .await
    .unwrap();
    let before = app.written().await;
    let response = app
        .client
        .delete(app.url(&format!("/v1/access-tokens/{root_id}?cascade=true")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    let message = assert_error(response, StatusCode::CONFLICT).await;
    assert!(
        message.contains("levels") && message.contains("nothing was revoked"),
        "{message}"
    );
    assert_eq!(app.written().await, before, "nothing written");
    let item: Value = app
        .get_token(&app.owner(), &root_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item["status"], "active");
    // Within the bounds (the chain cut at 30 levels), the same cascade revokes them all.
    sqlx::query("update access_tokens set parent_id = null where id = 'api_seed' || lpad('31', 16, '0') || '1'")
        .execute(&pool)
        .await
        .unwrap();
    let revoked: Value = app
        .client
        .delete(app.url(&format!("/v1/access-tokens/{root_id}?cascade=true")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked_descendants"].as_array().unwrap().len(), 30);
}
