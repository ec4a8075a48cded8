//! Key lifecycle: next/active/retired/revoked, rotation while replicas serve, revocation after a
//! leak, re-wrapping under a new key-encryption key, and the `keys` commands.

use std::io::Write;
use std::process::{Command, Stdio};

use access_tokens::keys::lifecycle::{self, Revoked};
use access_tokens::keys::{KeyEncryptionKey, KeySetName};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, eventually};

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

#[tokio::test]
async fn rotation_while_two_replicas_serve_keeps_every_token_verifiable() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let before = a.create_ok(&a.owner(), json!({"name": "before"})).await;
    let before_jwt = before["token"].as_str().unwrap().to_owned();
    let old_etag = a
        .get("/v1/access-tokens/.well-known/jwks.json")
        .await
        .headers()["etag"]
        .clone();
    let initial = a.key_states("api").await;
    let next_kid = initial.iter().find(|(_, s)| s == "next").unwrap().0.clone();
    // The next key is published before it signs.
    assert!(
        a.jwks("").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == next_kid)
    );

    // The operator's path: what `access-tokens keys rotate --set api` runs.
    let store = a.store().await;
    let rotated = lifecycle::rotate(&store, &a.kek, &[KeySetName::Api])
        .await
        .unwrap();
    assert_eq!(rotated, [(KeySetName::Api, next_kid.clone())]);

    for app in [&a, &b] {
        let switched = eventually(5, || async {
            let created = app.create_ok(&app.owner(), json!({"name": "probe"})).await;
            kid_of(created["token"].as_str().unwrap()) == next_kid
        })
        .await;
        assert!(
            switched,
            "a running replica signs with the new active key without a restart"
        );
    }
    let after = b.create_ok(&b.owner(), json!({"name": "after"})).await;
    let after_jwt = after["token"].as_str().unwrap().to_owned();
    assert_ne!(kid_of(&before_jwt), kid_of(&after_jwt));

    for app in [&a, &b] {
        let jwks = app.jwks("").await;
        assert_eq!(
            jwks["keys"].as_array().unwrap().len(),
            3,
            "retired, active and a new next key"
        );
        for jwt in [&before_jwt, &after_jwt] {
            app.verify("", jwt).await.unwrap();
            assert_eq!(app.list(jwt, "").await.status(), StatusCode::OK);
            assert_eq!(app.introspect(jwt).await["active"], true);
        }
    }
    let new_etag = a
        .get("/v1/access-tokens/.well-known/jwks.json")
        .await
        .headers()["etag"]
        .clone();
    assert_ne!(old_etag, new_etag, "the ETag changes with the key set");
    let after_states = a.key_states("api").await;
    let count = |state: &str| after_states.iter().filter(|(_, s)| s == state).count();
    assert_eq!(
        (count("retired"), count("active"), count("next")),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_revoked_key_is_unpublished_and_its_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(&app.owner(), json!({"name": "signed by a leaked key"}))
        .await;
    let jwt = created["token"].as_str().unwrap().to_owned();
    let leaked = kid_of(&jwt);
    let store = app.store().await;

    let outcome = lifecycle::revoke(&store, &app.kek, &leaked).await.unwrap();
    let Revoked::Now {
        key_set,
        promoted: Some(promoted),
    } = outcome
    else {
        panic!("revoking the active key promotes the next one: {outcome:?}");
    };
    assert_eq!(key_set, "api");
    let unpublished = eventually(5, || async {
        !app.jwks("").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == leaked.as_str())
    })
    .await;
    assert!(unpublished);
    assert_eq!(app.list(&jwt, "").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.introspect(&jwt).await, json!({"active": false}));
    let fresh = app.create_ok(&app.owner(), json!({"name": "fresh"})).await;
    assert_eq!(kid_of(fresh["token"].as_str().unwrap()), promoted);
    let jwks = app.jwks("").await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the promoted key and a new next key"
    );

    assert_eq!(
        lifecycle::revoke(&store, &app.kek, &leaked).await.unwrap(),
        Revoked::Already
    );
    assert!(
        lifecycle::revoke(&store, &app.kek, "no-such-kid")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn rewrap_moves_every_key_under_a_new_key_encryption_key() {
    let app = TestApp::spawn().await;
    let jwks = app.jwks("").await;
    let new = KeyEncryptionKey::generate();
    let store = app.store().await;
    assert!(
        lifecycle::rewrap(&store, &KeyEncryptionKey::generate(), &new)
            .await
            .is_err(),
        "a wrong old key changes nothing"
    );
    assert_eq!(lifecycle::rewrap(&store, &app.kek, &new).await.unwrap(), 8);

    let settings = crate::helpers::settings(app.database.clone(), new, vec![]);
    let restarted = access_tokens::App::build(settings)
        .await
        .expect("starts with the new key");
    drop(restarted);
    let old = crate::helpers::settings(app.database.clone(), app.kek.clone(), vec![]);
    assert!(
        access_tokens::App::build(old).await.is_err(),
        "the old key no longer opens the keys"
    );
    assert_eq!(
        app.jwks("").await,
        jwks,
        "the keys themselves did not change"
    );
}

fn cli(app: &TestApp, args: &[&str], stdin: &str) -> (bool, String, String) {
    let url = crate::helpers::database_url(&app.database);
    let kek = crate::helpers::test_kek_base64();
    let mut child = Command::new(env!("CARGO_BIN_EXE_access-tokens"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("KEY_ENCRYPTION_KEY", kek)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_keys_commands_list_rotate_and_revoke_with_confirmation() {
    let app = TestApp::spawn().await;
    app.create_ok(&app.owner(), json!({"name": "counted"}))
        .await;
    let (ok, out, err) = cli(&app, &["keys", "list"], "");
    assert!(ok, "{err}");
    assert!(out.starts_with("SET"), "{out}");
    assert_eq!(out.lines().count(), 9, "a header and eight keys: {out}");
    let active_api = out
        .lines()
        .find(|l| l.starts_with("api ") && l.contains(" active "))
        .unwrap();
    assert!(
        active_api.trim_end().ends_with(" 1"),
        "one token signed: {active_api}"
    );

    let (ok, out, err) = cli(&app, &["keys", "rotate", "--set", "public"], "");
    assert!(ok && out.starts_with("public: "), "{out} {err}");
    let (ok, _, err) = cli(&app, &["keys", "rotate"], "");
    assert!(!ok && err.contains("--set"), "{err}");

    let kid = app
        .key_states("api")
        .await
        .into_iter()
        .find(|(_, s)| s == "next")
        .unwrap()
        .0;
    let (ok, out, err) = cli(&app, &["keys", "revoke", &kid], "no\n");
    assert!(!ok && out.contains("Type yes"), "{out} {err}");
    assert!(
        app.key_states("api")
            .await
            .iter()
            .any(|(k, s)| *k == kid && s == "next"),
        "not revoked without yes"
    );
    let (ok, out, err) = cli(&app, &["keys", "revoke", &kid, "--yes"], "");
    assert!(ok && out.contains("revoked"), "{out} {err}");
    assert!(
        app.key_states("api")
            .await
            .iter()
            .any(|(k, s)| *k == kid && s == "revoked")
    );
}
