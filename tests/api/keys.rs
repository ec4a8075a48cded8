//! Key lifecycle: next/active/retired/revoked, rotation while replicas serve, revocation after a
//! leak, re-wrapping under a new key-encryption key, and the `keys` commands.

use std::io::Write;
use std::process::{Command, Stdio};

use access_tokens::keys::jwks::PublicJwk;
use access_tokens::keys::lifecycle::{self, Revoked};
use access_tokens::keys::{KeyEncryptionKey, KeySetName, KeyState, SigningKey};
use access_tokens::store::{KeyRow, Queries};
use aws_lc_rs::rsa::{KeyPair, KeySize};
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
    let rotated = lifecycle::rotate(&store, &a.kek, &[KeySetName::Api], &a.public_url)
        .await
        .unwrap();
    assert_eq!(rotated, [(KeySetName::Api, next_kid.clone())]);

    for app in [&a, &b] {
        let switched = eventually(30, || async {
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
    let unpublished = eventually(30, || async {
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

/// Runs the binary's command `args` against the app's store, `stdin` typed in; (success, stdout,
/// stderr).
pub(crate) fn cli(app: &TestApp, args: &[&str], stdin: &str) -> (bool, String, String) {
    let database_env = crate::helpers::database_env(&app.database);
    let kek = crate::helpers::test_kek_base64();
    let mut child = Command::new(env!("CARGO_BIN_EXE_access-tokens"))
        .args(args)
        .envs(database_env)
        .env("KEY_ENCRYPTION_KEY", kek)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that needs no answer may exit before reading it, closing the pipe first.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(error) = written {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

// Multi-threaded: `cli` waits for the command's process, blocking its thread, and the app's tasks
// must go on meanwhile (one caught mid-transaction would hold the embedded store's write lock
// until the command gave up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// A token as this service's api set would sign it, for `token_id` of organization 1, signed by
/// `signer`.
fn forged_caller(app: &TestApp, signer: &SigningKey, token_id: &str) -> String {
    signer
        .sign(&json!({
            "iss": format!("{}/v1/access-tokens", app.public_url), "sub": token_id, "jti": token_id,
            "token_id": token_id, "token_use": "access", "token_type": "api",
            "iat": chrono::Utc::now().timestamp(), "org_id": "1", "custom:ivy_org_id": "1",
            "user_id": "intruder", "custom:ivy_user_id": "intruder", "assignments": ["1:owner"],
            "assume_roles": ["1:owner"], "read_only": false, "anonymize": false,
        }))
        .unwrap()
}

#[tokio::test]
async fn a_key_written_into_the_database_without_the_key_encryption_key_is_never_trusted() {
    let app = TestApp::spawn().await;
    let store = app.store().await;
    // The attacker's key: its public half in a retired row, junk where the sealed half goes.
    let attacker = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = PublicJwk::from_key_pair(&attacker);
    let attacker_kid = public.thumbprint();
    let mut rows = vec![KeyRow {
        kid: attacker_kid.clone(),
        key_set: "api".into(),
        state: KeyState::Retired,
        n: public.n.clone(),
        e: public.e.clone(),
        private_key_sealed: vec![7; 1232],
        nonce: vec![7; 12],
    }];
    // A genuine private key sealed under the KEK for the row, with another key's n, e and kid
    // (the attacker holds that other key).
    let genuine = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let other = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let other_public = PublicJwk::from_key_pair(&other);
    let other_kid = other_public.thumbprint();
    let der =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&genuine).unwrap();
    let sealed = app
        .kek
        .seal(der.as_ref(), &format!("api:{other_kid}"))
        .unwrap();
    rows.push(KeyRow {
        kid: other_kid.clone(),
        key_set: "api".into(),
        state: KeyState::Retired,
        n: other_public.n.clone(),
        e: other_public.e.clone(),
        private_key_sealed: sealed.ciphertext,
        nonce: sealed.nonce,
    });
    for row in &rows {
        store
            .acquire()
            .await
            .unwrap()
            .db()
            .insert_key(row)
            .await
            .unwrap();
    }
    // A record for the forged tokens to name, as database write access can also add.
    app.seed("1", 1).await;
    let token_id = "api_seed00000000000000011";

    // A rotation afterwards: once its new next key is published, the ring has reloaded past the
    // forged rows.
    lifecycle::rotate(&store, &app.kek, &[KeySetName::Api], &app.public_url)
        .await
        .unwrap();
    let new_next = app
        .key_states("api")
        .await
        .into_iter()
        .find(|(_, state)| state == "next")
        .unwrap()
        .0;
    let reloaded = eventually(30, || async {
        app.jwks("").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == new_next.as_str())
    })
    .await;
    assert!(reloaded, "the rotation reached the JWKS");

    let jwks = app.jwks("").await;
    for kid in [&attacker_kid, &other_kid] {
        assert!(
            !jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == kid.as_str()),
            "{kid} is published"
        );
    }
    for (signer, kid) in [(attacker, attacker_kid), (other, other_kid)] {
        let forged = forged_caller(&app, &SigningKey::new(kid, signer), token_id);
        assert_eq!(
            app.list(&forged, "").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(app.introspect(&forged).await, json!({"active": false}));
    }
    // The good keys keep working, here and on a replica started after the forged rows.
    let created = app
        .create_ok(&app.owner(), json!({"name": "still signing"}))
        .await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(app.list(jwt, "").await.status(), StatusCode::OK);
    if crate::helpers::store() == crate::helpers::StoreKind::Postgres {
        let replica = app.replica().await;
        assert_eq!(replica.jwks("").await, app.jwks("").await);
        assert_eq!(replica.list(jwt, "").await.status(), StatusCode::OK);
    }
}
