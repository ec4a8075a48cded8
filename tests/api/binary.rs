//! The `access-tokens` binary as an operator runs it: start-up errors, logs that never carry a
//! credential, and a graceful exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::fresh_database;

const BIN: &str = env!("CARGO_BIN_EXE_access-tokens");

/// The binary with none of the service's variables inherited from the test's environment, its
/// metrics on a free port (the default, 9464, is one port for every binary a test starts), and a
/// fresh working directory (so that no `.env` or `./data` of the checkout is read).
pub fn command() -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(crate::helpers::fresh_folder());
    command.env("METRICS_ADDR", "127.0.0.1:0");
    for variable in [
        "DATABASE_URL",
        "KEY_ENCRYPTION_KEY",
        "LISTEN_ADDR",
        "PUBLIC_URL",
        "TRUSTED_ISSUERS",
        "TRUSTED_ISSUERS_FILE",
        "ROLES_CLAIM",
        "CORS_ALLOWED_ORIGINS",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        command.env_remove(variable);
    }
    command
}

/// What `serve` writes to stderr when it refuses to start with `kek` and the variables `env` (it
/// must refuse: nothing answers at its database URL, and it stops before it would connect).
fn refused_start(kek: &str, env: &[(&str, &str)]) -> String {
    let output = command()
        .args([
            "serve",
            "--database-url",
            "postgres://postgres@127.0.0.1/x",
            "--key-encryption-key",
            kek,
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_setting_refused_by_its_parser_names_the_variable() {
    for (variable, value, rule) in [
        ("RATE_LIMIT_CREATE_PER_ORG", "lots", "invalid digit"),
        ("STATUS_LIST_TTL", "soon", "not a duration"),
        ("METRICS_ADDR", "9464", "not an address"),
        ("LOG_FORMAT", "xml", "json or pretty"),
        ("ALLOW_INSECURE_ISSUERS", "maybe", ""),
        ("TOKIO_WORKER_THREADS", "lots", "a whole number, 1 or more"),
        ("TOKIO_WORKER_THREADS", "0", "a whole number, 1 or more"),
    ] {
        let output = command()
            .arg("serve")
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("access-tokens: {variable}=\"{value}\"")),
            "{stderr}"
        );
        assert!(
            stderr.contains(rule) && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
}

#[test]
fn serve_reads_a_dot_env_file_in_its_working_directory_and_set_variables_win() {
    let folder = crate::helpers::fresh_folder();
    std::fs::write(
        folder.join(".env"),
        "# settings\nRATE_LIMIT_CREATE_PER_ORG=lots\nSTATUS_LIST_TTL=\"soon\"\n",
    )
    .unwrap();
    let output = command()
        .arg("serve")
        .current_dir(&folder)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("RATE_LIMIT_CREATE_PER_ORG=\"lots\"") || stderr.contains("STATUS_LIST_TTL"),
        "the .env file was read: {stderr}"
    );
    // The environment wins over the file: with both fixed there, the next refusal is the file's
    // other setting, never these.
    let output = command()
        .arg("serve")
        .current_dir(&folder)
        .env("RATE_LIMIT_CREATE_PER_ORG", "5")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("STATUS_LIST_TTL=\"soon\""), "{stderr}");
    // A .env that does not parse stops start-up, naming the file.
    std::fs::write(folder.join(".env"), "NOT A SETTING LINE\n").unwrap();
    let output = command()
        .arg("serve")
        .current_dir(&folder)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("access-tokens: .env could not be read"),
        "{stderr}"
    );
    assert!(!folder.join("data").exists(), "nothing was created");
}

#[test]
fn a_key_encryption_key_of_the_wrong_length_stops_start_up() {
    let stderr = refused_start("c2hvcnQ=", &[]);
    assert!(
        stderr.contains("KEY_ENCRYPTION_KEY") && stderr.contains("32"),
        "{stderr}"
    );
}

#[test]
fn a_metrics_address_that_is_not_one_stops_start_up_naming_the_variable() {
    let stderr = refused_start(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        &[("METRICS_ADDR", "localhost:metrics")],
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("METRICS_ADDR") && stderr.contains("empty to turn metrics off"),
        "{stderr}"
    );
}

/// `access-tokens serve` running as a child process, with its log lines (stdout and stderr).
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    pub lines: Vec<String>,
    rx: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `command` (`serve` with its environment set, logging JSON) and waits for the
    /// line that says where it serves.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx.send(l)))
        });
        std::thread::spawn(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .for_each(|l| drop(tx2.send(l)))
        });
        let mut lines = Vec::new();
        let address = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the service logs that it serves: {lines:?}"));
            lines.push(line.clone());
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["fields"]["message"] == "serving"
            {
                break entry["fields"]["address"].as_str().unwrap().to_owned();
            }
        };
        Self {
            child,
            base: format!("http://{address}"),
            lines,
            rx,
        }
    }

    /// Sends SIGTERM, checks for exit 0 and returns every log line.
    pub fn stop(mut self) -> Vec<String> {
        let stopped = self.terminate();
        assert!(stopped, "SIGTERM ends the service with exit 0");
        std::mem::take(&mut self.lines)
    }

    /// SIGTERM, then whether it exited 0; collects the last log lines.
    fn terminate(&mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.lines.push(line);
        }
        exit.success()
    }
}

impl Drop for Served {
    /// A test that fails half-way leaves no service running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on a fresh database, trusting a test issuer, with `env` set beside: what a test of
/// the running binary needs of it.
struct Running {
    served: Served,
    issuer: crate::helpers::TestIssuer,
    kek: String,
    database: access_tokens::config::Database,
}

impl Running {
    async fn start(env: &[(&str, &str)]) -> Self {
        let database = fresh_database().await;
        let issuer = crate::helpers::TestIssuer::spawn().await;
        let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
        let mut command = command();
        command
            .arg("serve")
            .envs(crate::helpers::database_env(&database))
            .env("KEY_ENCRYPTION_KEY", &kek)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("TRUSTED_ISSUERS", &issuer.url)
            .envs(env.iter().copied());
        Self {
            served: Served::start(command),
            issuer,
            kek,
            database,
        }
    }
}

/// A token named `name`, created at `base` by `caller`, as the service answered it.
async fn create_token(base: &str, caller: &str, name: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/v1/access-tokens"))
        .bearer_auth(caller)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_never_carry_a_token_and_sigterm_exits_cleanly() {
    // The most verbose level, so that nothing hides below the default filter.
    let running = Running::start(&[("RUST_LOG", "trace")]).await;
    let base = running.served.base.clone();
    let client = reqwest::Client::new();
    let caller = running.issuer.user("1", "u1", &["1:owner"]);
    let created = create_token(&base, &caller, "logged?").await;
    let jwt = created["token"].as_str().unwrap().to_owned();
    let listed = client
        .get(format!("{base}/v1/access-tokens"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let refused = client
        .get(format!("{base}/v1/access-tokens"))
        .bearer_auth("not-a-token-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let kek = running.kek;
    let log = running.served.stop().join("\n");
    assert!(log.contains("request finished"), "requests are logged");
    assert!(log.contains("shutting down"));
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    for secret in [
        jwt.as_str(),
        caller.as_str(),
        "not-a-token-secret",
        kek.as_str(),
    ] {
        assert!(!log.contains(secret), "a credential reached the log");
        assert!(
            !log.contains(&signature(secret)),
            "a token signature reached the log"
        );
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer "),
        "an Authorization header reached the log"
    );
    assert!(!log.contains("PRIVATE KEY"));
}

/// Stopping is bounded whatever holds a request: a revocation waiting on a row lock that is never
/// released (here, by another session) does not keep the process alive past the drain
/// (`REQUEST_TIMEOUT` + 5 s) and the store's close (5 s). Behind a transaction pooler (the scale
/// suite), where the service sets no `statement_timeout`, this is the bound alone that ends it.
#[tokio::test]
async fn sigterm_exits_within_its_bound_while_a_statement_waits_on_a_lock() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Postgres) {
        return;
    }
    let running = Running::start(&[("REQUEST_TIMEOUT", "3s")]).await;
    let Running {
        mut served,
        issuer,
        database,
        ..
    } = running;
    let base = served.base.clone();
    let client = reqwest::Client::new();
    let caller = issuer.user("1", "u1", &["1:owner"]);
    let created = create_token(&base, &caller, "locked").await;
    let id = created["id"].as_str().unwrap().to_owned();

    // Another session locks the token's row and keeps the lock until the process is gone.
    let pool = sqlx::PgPool::connect_with(crate::helpers::direct_options(&database))
        .await
        .unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("select 1 from access_tokens where id = $1 for update")
        .bind(&id)
        .execute(&mut *holder)
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let url = format!("{base}/v1/access-tokens/{id}");
        async move { client.delete(url).bearer_auth(caller).send().await }
    });
    // The revocation waits on the lock: its statement is in PostgreSQL's lock wait.
    let waits = crate::helpers::eventually(30, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
                > 0
        }
    })
    .await;
    assert!(waits, "the revocation waits on the row lock");

    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // REQUEST_TIMEOUT + 5 s of drain, 5 s to close the store, 5 s for the runtime: 18 s at most
    // by design; a generous bound here, so that a slow machine never fails it.
    let started = std::time::Instant::now();
    let exited = loop {
        if let Some(exit) = served.child.try_wait().unwrap() {
            break Some(exit);
        }
        if started.elapsed() > Duration::from_secs(90) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        exited.is_some(),
        "the process still runs 90 s after SIGTERM while a lock is held"
    );
    // The client got an answer or a closed connection, never a hang.
    let _ = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiting request ends with the process");
    holder.rollback().await.unwrap();
    eprintln!(
        "exited {:.1} s after SIGTERM",
        started.elapsed().as_secs_f64()
    );
}
