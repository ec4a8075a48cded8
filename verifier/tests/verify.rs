//! The verifier against a test issuer on loopback: what it accepts, what it refuses and why, and
//! what it fetches.

mod common;

use std::time::Duration;

use access_tokens_verifier::{Error, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ROTATED_KID, Signer, TestIssuer, eventually, now};
use serde_json::json;

/// Generous: the polls below end as soon as their condition holds.
const BOUND: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_valid_token_passes_with_its_claims() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let claims = verifier.verify(&issuer.token(5)).await.unwrap();
    assert_eq!(claims.token_id.as_deref(), Some("t-1"));
    assert_eq!(claims.org_id.as_deref(), Some("123"));
    assert_eq!(claims.user_id.as_deref(), Some("u-1"));
    assert_eq!(claims.token_type.as_deref(), Some("api"));
    assert_eq!(claims.assignments, ["123:owner"]);
    assert_eq!(claims.exp, None, "no exp: a token that never expires");
    assert!(claims.iat.is_some());
    assert_eq!(claims.status.unwrap().uri, issuer.list_uri("1"));
    assert_eq!(claims.raw["token_use"], "access");
    assert_eq!(issuer.list_hits(), 1);
}

#[tokio::test]
async fn a_token_without_status_is_checked_without_a_list_when_allowed() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer
        .builder()
        .require_status(false)
        .build()
        .await
        .unwrap();
    let mut claims = issuer.claims(0);
    claims.as_object_mut().unwrap().remove("status");
    claims["exp"] = json!(now() + 600);
    let verified = verifier
        .verify(&issuer.signer.token(&claims))
        .await
        .unwrap();
    assert!(verified.status.is_none());
    assert_eq!(verified.exp, Some(claims["exp"].as_u64().unwrap()));
    assert_eq!(issuer.list_hits(), 0);
}

#[tokio::test]
async fn status_1_is_revoked_2_suspended_and_others_invalid() {
    let issuer = TestIssuer::start().await;
    issuer.set_status("1", 1, 1);
    issuer.set_status("1", 2, 2);
    issuer.set_status("1", 3, 3);
    let verifier = issuer.verifier().await;
    assert!(verifier.verify(&issuer.token(0)).await.is_ok());
    assert!(matches!(
        verifier.verify(&issuer.token(1)).await,
        Err(Error::Revoked)
    ));
    assert!(matches!(
        verifier.verify(&issuer.token(2)).await,
        Err(Error::Suspended)
    ));
    assert!(matches!(
        verifier.verify(&issuer.token(3)).await,
        Err(Error::InvalidStatus(3))
    ));
}

#[tokio::test]
async fn a_status_change_is_seen_after_the_lists_ttl() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let token = issuer.token(7);
    verifier.verify(&token).await.unwrap();

    issuer.set_status("1", 7, 1);
    assert!(
        eventually(BOUND, async || matches!(
            verifier.verify(&token).await,
            Err(Error::Revoked)
        ))
        .await,
        "revoked once the list's ttl (1 s) has passed"
    );
    issuer.set_status("1", 7, 2);
    assert!(
        eventually(BOUND, async || matches!(
            verifier.verify(&token).await,
            Err(Error::Suspended)
        ))
        .await
    );
    issuer.set_status("1", 7, 0);
    assert!(eventually(BOUND, async || verifier.verify(&token).await.is_ok()).await);
}

#[tokio::test]
async fn a_list_is_cached_for_its_ttl_within_the_bounds() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.ttl = Some(3600));
    // The list asks for an hour; the verifier's bound is a minute, far beyond this test.
    let verifier = issuer.verifier().await;
    for _ in 0..20 {
        verifier.verify(&issuer.token(0)).await.unwrap();
    }
    assert_eq!(issuer.list_hits(), 1);
}

#[tokio::test]
async fn concurrent_verifications_share_one_fetch_of_a_list() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.ttl = Some(60));
    let verifier = issuer.verifier().await;
    let token = issuer.token(0);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(issuer.list_hits(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once_per_cooldown() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer
        .builder()
        .jwks_refetch_cooldown(Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits(), 1, "read once when built");
    let rotated = Signer::new(ROTATED_KID, 1);
    let token = rotated.token(&issuer.claims(0));

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Err(Error::UnknownKey(kid)) if kid == ROTATED_KID));
    }
    assert_eq!(issuer.jwks_hits(), 2, "one refetch for all of them");

    // The key is published now, but the cooldown has not passed: no further read.
    issuer.with(|s| s.jwks.push(rotated.clone()));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(Error::UnknownKey(_))
    ));
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test]
async fn a_rotated_in_key_is_found_by_a_refetch() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let rotated = Signer::new(ROTATED_KID, 1);
    issuer.with(|s| s.jwks.push(rotated.clone()));
    verifier
        .verify(&rotated.token(&issuer.claims(0)))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits(), 2);
    // The old key is still held and needs no read.
    verifier.verify(&issuer.token(0)).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 2);
}

#[tokio::test]
async fn alg_none_hs256_and_others_are_refused_before_any_key_lookup() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = b64(issuer.claims(0));
    for alg in ["none", "None", "HS256", "RS512", "PS256", "ES256"] {
        // An unknown kid: a key lookup would read the JWKS again.
        let header = b64(json!({"alg": alg, "kid": "unknown"}));
        let token = format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode(b"sig"));
        assert!(
            matches!(verifier.verify(&token).await, Err(Error::Algorithm(a)) if a == alg),
            "{alg}"
        );
        let unsigned = format!("{header}.{claims}.");
        assert!(matches!(
            verifier.verify(&unsigned).await,
            Err(Error::Algorithm(_))
        ));
    }
    assert_eq!(issuer.jwks_hits(), 1, "no key was looked up");
}

#[tokio::test]
async fn a_signed_token_with_a_crit_header_is_refused() {
    // RFC 7515 section 4.1.11: a recipient that does not understand a listed extension must
    // reject the JWS. The token is otherwise valid and signed by the issuer's key.
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    for crit in [json!(["exp"]), json!([]), json!(null)] {
        let header =
            json!({"alg": "RS256", "typ": "JWT", "kid": issuer.signer.kid, "crit": crit, "exp": 1});
        let token = issuer.signer.sign(&header, &issuer.claims(0));
        assert!(
            matches!(verifier.verify(&token).await, Err(Error::Malformed(_))),
            "{crit}"
        );
    }
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": issuer.signer.kid});
    verifier
        .verify(&issuer.signer.sign(&header, &issuer.claims(0)))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tampered_token_fails_its_signature() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let token = issuer.token(0);
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signed.split_once('.').unwrap();
    let mut claims = issuer.claims(0);
    claims["assignments"] = json!(["123:admin"]);
    let forged = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(Error::Signature)
    ));
}

#[tokio::test]
async fn iss_must_be_the_issuer_exactly() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    for iss in [
        json!(format!("{}/", issuer.issuer)),
        json!(format!("{}/public", issuer.issuer)),
        json!("https://other.example/v1/access-tokens"),
        json!([issuer.issuer]),
        json!(null),
    ] {
        let mut claims = issuer.claims(0);
        claims["iss"] = iss.clone();
        assert!(
            matches!(
                verifier.verify(&issuer.signer.token(&claims)).await,
                Err(Error::Issuer)
            ),
            "{iss}"
        );
    }
    assert_eq!(issuer.list_hits(), 0);
}

#[tokio::test]
async fn an_expired_token_is_refused_before_its_list_is_fetched() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let mut claims = issuer.claims(0);
    claims["exp"] = json!(now() - 10);
    assert!(matches!(
        verifier.verify(&issuer.signer.token(&claims)).await,
        Err(Error::Expired)
    ));
    claims["exp"] = json!(now() + 600);
    claims["nbf"] = json!(now() + 600);
    assert!(matches!(
        verifier.verify(&issuer.signer.token(&claims)).await,
        Err(Error::NotYetValid)
    ));
    // Section 8.3: no status list is fetched for a token that is not valid itself.
    assert_eq!(issuer.list_hits(), 0);

    let lenient = issuer
        .builder()
        .leeway(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    claims["exp"] = json!(now() - 10);
    claims.as_object_mut().unwrap().remove("nbf");
    lenient.verify(&issuer.signer.token(&claims)).await.unwrap();
}

#[tokio::test]
async fn a_status_list_is_not_an_access_token() {
    // The issuer signs its lists with its tokens' key and `iss`, and serves them to anyone.
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let list = reqwest::get(issuer.list_uri("1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(matches!(
        verifier.verify(&list).await,
        Err(Error::NotAnAccessToken(why)) if why.contains("typ")
    ));

    // The same claims under an access token's typ, or a token's claims under another typ.
    let list_claims = json!({"iss": issuer.issuer, "sub": issuer.list_uri("1"), "iat": now(),
        "exp": now() + 60, "status_list": {"bits": 2, "lst": common::encode_list(2, &[0; 8])}});
    assert!(matches!(
        verifier.verify(&issuer.signer.token(&list_claims)).await,
        Err(Error::NotAnAccessToken(why)) if why.contains("token_type")
    ));
    for typ in [json!("statuslist+jwt"), json!("at+jwt"), json!(null)] {
        let mut header = json!({"alg": "RS256", "kid": issuer.signer.kid});
        if !typ.is_null() {
            header["typ"] = typ.clone();
        }
        assert!(
            matches!(
                verifier
                    .verify(&issuer.signer.sign(&header, &issuer.claims(0)))
                    .await,
                Err(Error::NotAnAccessToken(_))
            ),
            "{typ}"
        );
    }
    let header = json!({"alg": "RS256", "typ": "application/jwt", "kid": issuer.signer.kid});
    verifier
        .verify(&issuer.signer.sign(&header, &issuer.claims(0)))
        .await
        .expect("application/jwt is JWT (RFC 7515 section 4.1.9)");

    let mut claims = issuer.claims(0);
    claims.as_object_mut().unwrap().remove("token_id");
    assert!(matches!(
        verifier.verify(&issuer.signer.token(&claims)).await,
        Err(Error::NotAnAccessToken(why)) if why.contains("token_id")
    ));
}

#[tokio::test]
async fn a_token_without_status_is_refused_unless_its_type_is_never_stored() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    let mut claims = issuer.claims(0);
    claims.as_object_mut().unwrap().remove("status");
    claims["exp"] = json!(now() + 600);
    assert!(matches!(
        verifier.verify(&issuer.signer.token(&claims)).await,
        Err(Error::NoStatus)
    ));
    // contact_identification tokens are never stored and carry no status.
    claims["token_type"] = json!("contact_identification");
    verifier
        .verify(&issuer.signer.token(&claims))
        .await
        .unwrap();
    assert_eq!(issuer.list_hits(), 0);
}

#[tokio::test]
async fn a_list_without_exp_is_refused_unless_allowed() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.exp_in = None);
    let verifier = issuer.verifier().await;
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(why)) if why.contains("exp")
    ));
    let lenient = issuer
        .builder()
        .require_status_list_exp(false)
        .build()
        .await
        .unwrap();
    lenient.verify(&issuer.token(0)).await.unwrap();
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An issuer whose discovery document never ends, sent without Content-Length.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/v1/access-tokens", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let built = Verifier::builder(&issuer)
        .size_limits(1 << 20, 1 << 20)
        .timeout(BOUND)
        .build()
        .await;
    assert!(
        matches!(&built, Err(Error::Discovery(why)) if why.contains("larger than 1048576 bytes")),
        "{built:?}"
    );
}

#[tokio::test]
async fn a_list_whose_sub_is_not_the_uri_is_refused() {
    let issuer = TestIssuer::start().await;
    let other = issuer.list_uri("2");
    issuer.with(|s| s.sub = Some(other));
    let verifier = issuer.verifier().await;
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(why)) if why.contains("sub")
    ));
}

#[tokio::test]
async fn a_list_that_is_not_a_status_list_token_is_refused() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.typ = "JWT".into());
    let verifier = issuer.verifier().await;
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(why)) if why.contains("typ")
    ));

    // Signed by a key that is not in the issuer's JWKS.
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.list_signer = Signer::new(ROTATED_KID, 1));
    let verifier = issuer.verifier().await;
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(_))
    ));

    // Signed by the right kid but another key.
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.list_signer = Signer::new(common::KID, 1));
    let verifier = issuer.verifier().await;
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(why)) if why.contains("signature")
    ));
}

#[tokio::test]
async fn an_index_outside_the_list_is_refused() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    // 64 entries of 2 bits: 16 bytes, indices 0 to 63.
    verifier.verify(&issuer.token(63)).await.unwrap();
    for idx in [64, 1000, u64::MAX] {
        assert!(
            matches!(
                verifier.verify(&issuer.token(idx)).await,
                Err(Error::StatusIndex { idx: i, len: 64 }) if i == idx
            ),
            "{idx}"
        );
    }
}

#[tokio::test]
async fn a_list_unavailable_past_its_exp_fails_closed() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.exp_in = Some(2));
    let verifier = issuer.verifier().await;
    let token = issuer.token(0);
    verifier.verify(&token).await.unwrap();

    issuer.with(|s| s.unavailable = true);
    assert!(
        eventually(BOUND, async || matches!(
            verifier.verify(&token).await,
            Err(Error::StatusUnavailable(_))
        ))
        .await,
        "refused once the cached copy is past its exp"
    );

    // A list never fetched, and unavailable: refused too.
    let fresh = issuer.verifier().await;
    assert!(matches!(
        fresh.verify(&token).await,
        Err(Error::StatusUnavailable(_))
    ));
}

#[tokio::test]
async fn fail_open_accepts_only_when_the_list_cannot_be_fetched() {
    let issuer = TestIssuer::start().await;
    issuer.set_status("1", 1, 1);
    issuer.with(|s| s.unavailable = true);
    let verifier = issuer
        .builder()
        .fail_open_when_status_unavailable(true)
        .build()
        .await
        .unwrap();
    verifier.verify(&issuer.token(1)).await.unwrap();

    issuer.with(|s| s.unavailable = false);
    issuer.with(|s| s.sub = Some("elsewhere".into()));
    let verifier = issuer
        .builder()
        .fail_open_when_status_unavailable(true)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        verifier.verify(&issuer.token(0)).await,
        Err(Error::StatusListInvalid(_))
    ));
}

#[tokio::test]
async fn a_status_uri_outside_the_issuer_is_not_fetched() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    for uri in [
        format!("{}/elsewhere/status-lists/1", issuer.origin),
        format!("{}-evil/status-lists/1", issuer.issuer),
        issuer.issuer.clone(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "https://attacker.example/v1/access-tokens/status-lists/1".to_owned(),
    ] {
        let mut claims = issuer.claims(0);
        claims["status"]["status_list"]["uri"] = json!(uri);
        assert!(
            matches!(
                verifier.verify(&issuer.signer.token(&claims)).await,
                Err(Error::StatusUri(u)) if u == uri
            ),
            "{uri}"
        );
    }
    assert_eq!(issuer.list_hits(), 0);
}

#[tokio::test]
async fn a_malformed_status_claim_is_refused() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier().await;
    for status in [
        json!("revoked"),
        json!({"status_list": "x"}),
        json!({"status_list": {"idx": -1, "uri": issuer.list_uri("1")}}),
        json!({"status_list": {"idx": "0", "uri": issuer.list_uri("1")}}),
        json!({"status_list": {"idx": 0}}),
    ] {
        let mut claims = issuer.claims(0);
        claims["status"] = status.clone();
        assert!(
            matches!(
                verifier.verify(&issuer.signer.token(&claims)).await,
                Err(Error::Malformed(_))
            ),
            "{status}"
        );
    }
}

#[tokio::test]
async fn building_checks_the_discovery_documents_issuer() {
    let issuer = TestIssuer::start().await;
    issuer.with(|s| s.discovery_issuer = Some("https://other.example".into()));
    assert!(matches!(
        issuer.builder().build().await,
        Err(Error::Discovery(_))
    ));
    assert!(matches!(
        Verifier::builder(format!("{}/nothing-here", issuer.origin))
            .build()
            .await,
        Err(Error::Discovery(_))
    ));
}
