//! Verification of a token whose status list is cached: the work a service does per request.
//! The issuer runs on loopback for the setup only; the measured loop makes no request (checked
//! after it). Compare with one core's `openssl speed -seconds 3 rsa2048` verify rate: the
//! figures are in bench/RESULTS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (issuer, verifier, token) = rt.block_on(async {
        let issuer = common::TestIssuer::start().await;
        issuer.with(|s| s.ttl = Some(3600));
        let verifier = issuer
            .builder()
            .status_ttl_bounds(Duration::from_secs(3600), Duration::from_secs(3600))
            .build()
            .await
            .expect("a verifier");
        let token = issuer.token(5);
        verifier.verify(&token).await.expect("a valid token");
        (issuer, verifier, token)
    });
    let fetches = (issuer.jwks_hits(), issuer.list_hits());

    c.bench_function("verify RS256 token, status list cached", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify(black_box(&token)))
                .expect("a valid token")
        });
    });
    assert_eq!(
        (issuer.jwks_hits(), issuer.list_hits()),
        fetches,
        "no request in the measured loop"
    );
}

criterion_group!(benches, verify);
criterion_main!(benches);
