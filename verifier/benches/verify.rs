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
    // The floor: the RSA signature check alone, with a key parsed once, as `verify` holds it.
    let key = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        issuer.signer.public_key_der(),
    )
    .expect("a public key");
    let (signed, signature) = token.rsplit_once('.').expect("a compact JWS");
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .expect("base64url");
    c.bench_function("RS256 signature alone (aws-lc-rs)", |b| {
        b.iter(|| {
            key.verify_sig(black_box(signed.as_bytes()), black_box(&signature))
                .expect("a valid signature")
        });
    });
    // `openssl speed` counts CPU time by default, criterion wall time: on a shared machine the two
    // differ. This counts the process's CPU time (utime + stime) over a fixed run as well.
    if let Some(before) = cpu_ticks() {
        let started = std::time::Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(3) {
            for _ in 0..1000 {
                rt.block_on(verifier.verify(black_box(&token)))
                    .expect("a valid token");
            }
            n += 1000;
        }
        if let Some(after) = cpu_ticks() {
            #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
            let cpu_seconds = (after - before) as f64 / 100.0;
            #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
            let rate = n as f64 / cpu_seconds;
            println!(
                "verify, status list cached: {n} in {cpu_seconds:.2} s of CPU time = {rate:.0}/s \
                 ({:.2} s elapsed)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    assert_eq!(
        (issuer.jwks_hits(), issuer.list_hits()),
        fetches,
        "no request in the measured loop"
    );
}

/// utime + stime of this process in clock ticks (USER_HZ, 100 on Linux), from /proc/self/stat.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

criterion_group!(benches, verify);
criterion_main!(benches);
