//! The embedded store as a newcomer meets it: `serve` with no settings at all, and the ways a
//! data folder can be wrong, each stopping start-up with one line and losing nothing.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::binary::{Served, command};
use crate::helpers::fresh_folder;

/// `serve` in `folder`, with no settings but a free port.
fn serve_in(folder: &Path) -> Command {
    let mut command = command();
    command
        .arg("serve")
        .current_dir(folder)
        .env("LISTEN_ADDR", "127.0.0.1:0");
    command
}

/// Runs `serve` in `folder` expecting it to stop; returns its one line of error.
fn failed_start(folder: &Path) -> String {
    let output = serve_in(folder).output().unwrap();
    assert!(!output.status.success(), "start-up stops");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

async fn jwks(base: &str) -> Value {
    reqwest::get(format!("{base}/v1/access-tokens/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_with_no_settings_runs_on_data_and_keeps_it_across_restarts() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Sqlite) {
        return;
    }
    let folder = fresh_folder();
    let served = Served::start(serve_in(&folder));
    let notice = served
        .lines
        .iter()
        .find(|l| l.contains("embedded development store"))
        .expect("one line says it runs on the embedded store");
    assert!(notice.contains("DATABASE_URL=postgres://"), "{notice}");
    assert!(notice.contains("data/access-tokens.db"), "{notice}");
    let ready = reqwest::get(format!("{}/health/ready", served.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let keys = jwks(&served.base).await;
    served.stop();

    assert!(folder.join("data/access-tokens.db").is_file());
    let key_file = folder.join("data/key-encryption-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    }
    let key = std::fs::read_to_string(&key_file).unwrap();

    let again = Served::start(serve_in(&folder));
    assert_eq!(
        jwks(&again.base).await,
        keys,
        "the same keys after a restart"
    );
    again.stop();
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}

#[test]
fn a_data_path_that_is_not_a_folder_stops_start_up() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Sqlite) {
        return;
    }
    let folder = fresh_folder();
    std::fs::write(folder.join("data"), b"not a folder").unwrap();
    let message = failed_start(&folder);
    assert!(
        message.contains("data") && message.contains("DATABASE_URL"),
        "{message}"
    );
    assert_eq!(std::fs::read(folder.join("data")).unwrap(), b"not a folder");
}

#[test]
fn a_corrupt_database_file_stops_start_up_and_stays_as_it_was() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Sqlite) {
        return;
    }
    let folder = fresh_folder();
    let data = folder.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let garbage = b"this is not an SQLite database, but someone's notes".repeat(100);
    std::fs::write(data.join("access-tokens.db"), &garbage).unwrap();
    std::fs::write(
        data.join("key-encryption-key"),
        crate::helpers::test_kek_base64(),
    )
    .unwrap();
    let message = failed_start(&folder);
    assert!(
        message.contains("not a readable SQLite database") && message.contains("backup"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(data.join("access-tokens.db")).unwrap(),
        garbage
    );
}

#[tokio::test]
async fn a_wrong_or_malformed_key_file_stops_start_up_and_loses_nothing() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Sqlite) {
        return;
    }
    let folder = fresh_folder();
    let served = Served::start(serve_in(&folder));
    let keys = jwks(&served.base).await;
    served.stop();
    let key_file = folder.join("data/key-encryption-key");
    let right = std::fs::read_to_string(&key_file).unwrap();

    std::fs::write(&key_file, "c2hvcnQ=\n").unwrap();
    let message = failed_start(&folder);
    assert!(
        message.contains("key-encryption-key") && message.contains("32"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), "c2hvcnQ=\n");

    std::fs::write(&key_file, crate::helpers::test_kek_base64()).unwrap();
    let message = failed_start(&folder);
    assert!(message.contains("sealed with"), "{message}");

    std::fs::remove_file(&key_file).unwrap();
    let message = failed_start(&folder);
    assert!(message.contains("missing"), "{message}");
    assert!(!key_file.exists(), "no new key replaces the lost one");

    // With the right key back, the same keys serve again.
    std::fs::write(&key_file, right).unwrap();
    let again = Served::start(serve_in(&folder));
    assert_eq!(jwks(&again.base).await, keys);
    again.stop();
}

#[tokio::test]
async fn a_start_that_cannot_bind_its_address_creates_no_store() {
    if !crate::helpers::runs_on(crate::helpers::StoreKind::Sqlite) {
        return;
    }
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let folder = fresh_folder();
    let output = serve_in(&folder)
        .env("LISTEN_ADDR", held.local_addr().unwrap().to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("LISTEN_ADDR"), "{stderr}");
    assert!(
        !folder.join("data").exists(),
        "no ./data for a start that failed"
    );
}
