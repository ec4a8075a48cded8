//! Replicas on one database, restarts, and start-up with the wrong key-encryption key.

use serde_json::json;

use reqwest::StatusCode;

use crate::helpers::{TestApp, TestIssuer, eventually, settings};
use access_tokens::App;
use access_tokens::keys::KeyEncryptionKey;

#[tokio::test]
async fn replicas_on_one_database_publish_the_same_keys_and_share_tokens() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    for set in ["", "/public", "/portal-preview", "/contact-identification"] {
        assert_eq!(a.jwks(set).await, b.jwks(set).await, "{set}");
    }
    // A token created on A calls B (B trusts a different test issuer, so use the token itself).
    let created = a.create_ok(&a.owner(), json!({"name": "shared"})).await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(b.list_ok(jwt, "").await.len(), 1);
    // Revoked on A, refused on B as soon as B has the notification (milliseconds in practice).
    a.revoke(&a.owner(), created["id"].as_str().unwrap()).await;
    assert!(
        eventually(30, || async {
            b.list(jwt, "").await.status() == reqwest::StatusCode::UNAUTHORIZED
        })
        .await
    );
}

#[tokio::test]
async fn a_restart_keeps_keys_tokens_and_revocations() {
    let mut first = TestApp::spawn().await;
    let created = first
        .create_ok(&first.owner(), json!({"name": "durable"}))
        .await;
    let revoked = first
        .create_ok(
            &first.owner(),
            json!({"name": "revoked before the restart"}),
        )
        .await;
    let revoked_id = revoked["id"].as_str().unwrap();
    first.revoke(&first.owner(), revoked_id).await;
    let jwks = first.jwks("").await;
    first.stop();
    first.stopped.take().unwrap().await.unwrap().unwrap();

    let second = first.replica().await;
    assert_eq!(second.jwks("").await, jwks);
    let jwt = created["token"].as_str().unwrap();
    let items = second.list_ok(jwt, "").await;
    assert_eq!(items.len(), 1, "the revoked token is not listed");
    assert_eq!(items[0]["id"], created["id"]);
    let claims = second.verify("", jwt).await.unwrap();
    assert_eq!(claims["token_id"], created["id"]);
    let revoked_jwt = revoked["token"].as_str().unwrap();
    assert_eq!(
        second.list(revoked_jwt, "").await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert_eq!(second.introspect(revoked_jwt).await["active"], false);
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest_and_a_wrong_kek_stops_start_up() {
    let app = TestApp::spawn().await;
    let sealed = app.sealed_keys().await;
    assert_eq!(sealed.len(), 8);
    for bytes in &sealed {
        // An unsealed PKCS#8 RSA key starts with a DER SEQUENCE and carries the rsaEncryption OID.
        let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(
            !bytes.windows(oid.len()).any(|w| w == oid),
            "private key stored in clear"
        );
    }

    let issuer = TestIssuer::url_only();
    let (wrong_kek, wrong_text) = KeyEncryptionKey::generate_base64();
    for _ in 0..2 {
        let wrong = settings(
            app.database.clone(),
            wrong_kek.clone(),
            vec![issuer.clone()],
        );
        let error = App::build(wrong)
            .await
            .err()
            .expect("a wrong key-encryption key stops start-up")
            .to_string();
        assert!(error.contains("KEY_ENCRYPTION_KEY"), "{error}");
    }
    // Nothing was written: no key sealed under the wrong key-encryption key, however many tries.
    assert_eq!(app.sealed_keys().await, sealed);
    // Nothing was overwritten: the right key still opens every key.
    assert_eq!(app.jwks("").await, app.replica().await.jwks("").await);

    // `keys list` under the wrong key marks every key it cannot open, and says so on stderr.
    use secrecy::ExposeSecret;
    let output = crate::binary::command()
        .args(["keys", "list"])
        .envs(crate::helpers::database_env(&app.database))
        .env("KEY_ENCRYPTION_KEY", wrong_text.expose_secret())
        .output()
        .unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(table.matches("(CANNOT OPEN)").count(), 8, "{table}");
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("8 key(s) marked CANNOT OPEN")
    );
    let output = crate::binary::command()
        .args(["keys", "list"])
        .envs(crate::helpers::database_env(&app.database))
        .env("KEY_ENCRYPTION_KEY", crate::helpers::test_kek_base64())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8(output.stdout)
            .unwrap()
            .contains("CANNOT OPEN")
    );
}

#[tokio::test]
async fn a_deleted_row_counts_as_revoked_on_every_replica_and_after_a_restart() {
    let mut a = TestApp::spawn().await;
    // The embedded store is one process's; on PostgreSQL a second replica must learn of it too.
    let b = a.another_replica().await;
    let created = a.create_ok(&a.owner(), json!({"name": "deleted"})).await;
    let kept = a.create_ok(&a.owner(), json!({"name": "kept"})).await;
    let jwt = created["token"].as_str().unwrap().to_owned();
    let kept_jwt = kept["token"].as_str().unwrap().to_owned();
    let replicas: Vec<&TestApp> = std::iter::once(&a).chain(b.as_ref()).collect();
    for app in &replicas {
        assert_eq!(app.list(&jwt, "").await.status(), StatusCode::OK);
        assert_eq!(app.introspect(&jwt).await["active"], true);
    }

    a.execute_with(
        "delete from access_tokens where id = $1",
        created["id"].as_str().unwrap(),
    )
    .await;
    for app in &replicas {
        let refused = eventually(30, || async {
            app.list(&jwt, "").await.status() == StatusCode::UNAUTHORIZED
                && app.introspect(&jwt).await["active"] == false
        })
        .await;
        assert!(refused, "a deleted token is refused on every replica");
        assert_eq!(app.list(&kept_jwt, "").await.status(), StatusCode::OK);
    }

    drop(b);
    a.stop();
    a.stopped.take().unwrap().await.unwrap().unwrap();
    let restarted = a.replica().await;
    assert_eq!(
        restarted.list(&jwt, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(restarted.introspect(&jwt).await, json!({"active": false}));
    assert_eq!(restarted.list(&kept_jwt, "").await.status(), StatusCode::OK);
}
