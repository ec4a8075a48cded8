//! Micro-benchmarks of the hot pure functions, so that regressions show up in numbers:
//! claim building + signing (every issuance), JWKS rendering (every key change), verifying
//! one of the service's own tokens (every caller check and introspection), and rendering a status
//! list of a million tokens with 1 % revoked (every revocation), whose size as served it prints,
//! and parsing a create body: a normal one, and a hostile 63 KB one of 7,000 keys.
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;

use access_tokens::keys::jwks::{PublicJwk, render_jwks};
use access_tokens::keys::verify::verify_own;
use access_tokens::keys::{KeySetName, Keys};
use access_tokens::service::status_lists::render_set;
use access_tokens::store::StatusEntry;
use access_tokens::tokens::claims::Claims;
use access_tokens::tokens::request::CreateTokenBody;
use access_tokens::tokens::status_list::StatusRef;
use access_tokens::tokens::{Caller, TokenId, TokenRecord, TokenType, TypeFields};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

fn caller() -> Caller {
    Caller {
        username: Some("jane@example.com".into()),
        email: Some("jane@example.com".into()),
        ..Caller::user(
            "https://idp.example",
            "123",
            "u-1",
            vec!["123:owner".into()],
        )
    }
}

fn record(kid: &str) -> TokenRecord {
    TokenRecord {
        id: TokenId::generate(TokenType::Api).to_string(),
        org_id: "123".into(),
        created_by: "u-1".into(),
        owner: access_tokens::tokens::owner_key("https://idp.example", "123", "u-1"),
        token_type: TokenType::Api,
        name: "CI pipeline".into(),
        assignments: vec!["123:owner".into()],
        read_only: false,
        anonymize: false,
        fields: TypeFields::default(),
        key_id: kid.into(),
        created_at: Utc::now(),
        expires_at: None,
        revoked_at: None,
        suspended_at: None,
        last_used: None,
        rotated_from: None,
        parent_id: None,
        status: Some(StatusRef {
            list: 0,
            idx: 123_456,
        }),
        notice_at: None,
        retires_at: None,
        replaced_by: None,
    }
}

fn hot_paths(c: &mut Criterion) {
    let keys = Keys::generate("https://tokens.example.com").expect("in-memory key sets");
    let api = keys.set(KeySetName::Api);
    let caller = caller();
    let record = record(api.signing.kid());

    c.bench_function("claims + RS256 signing (aws-lc-rs, key parsed once)", |b| {
        b.iter(|| {
            let claims = Claims::new(&api.issuer, black_box(&record), &caller);
            api.signing.sign(&claims).expect("signs")
        })
    });

    let jwt = api
        .signing
        .sign(&Claims::new(&api.issuer, &record, &caller))
        .expect("signs");
    c.bench_function("verify own token (kid lookup, RS256, claims)", |b| {
        b.iter(|| verify_own(&keys, black_box(&jwt)).expect("valid"))
    });

    let published: Vec<(String, PublicJwk)> = (0..3)
        .map(|i| {
            let pair =
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("key");
            (format!("kid-{i}"), PublicJwk::from_key_pair(&pair))
        })
        .collect();
    c.bench_function("render JWKS of 3 keys (bytes + ETag)", |b| {
        b.iter(|| render_jwks(black_box(&published)))
    });

    // 1,000,000 tokens in list 0 (2^20 indices), 10,000 of them revoked at indices spread as a
    // random generator spreads them (a fixed seed, so that runs compare).
    let mut seed: u64 = 0x5eed;
    let mut revoked = std::collections::BTreeSet::new();
    while revoked.len() < 10_000 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        revoked.insert((seed >> 33) % 1_000_000);
    }
    let entries: Vec<StatusEntry> = revoked
        .iter()
        .map(|&idx| StatusEntry {
            list: 0,
            idx: idx as i64,
            status: 1,
        })
        .collect();
    let ttl = std::time::Duration::from_secs(60);
    let rendered =
        render_set(&keys, KeySetName::Api, 0, &entries, ttl, 1_764_300_000).expect("renders");
    let list = &rendered.lists[0];
    eprintln!(
        "status list of 1,000,000 tokens, 1 % revoked: {} bytes as served, {} bytes gzip",
        list.body.len(),
        list.gzip.len()
    );
    // CPU time, not wall time, of one render: the machine may be busy with other work. Linux's
    // per-thread schedstat counts nanoseconds on a CPU.
    if let Some(before) = thread_cpu_ns() {
        const RENDERS: u64 = 20;
        for _ in 0..RENDERS {
            black_box(
                render_set(&keys, KeySetName::Api, 0, &entries, ttl, 1_764_300_000)
                    .expect("renders"),
            );
        }
        if let Some(after) = thread_cpu_ns() {
            eprintln!(
                "status list render CPU time: {:.1} ms per render (mean of {RENDERS})",
                (after - before) as f64 / RENDERS as f64 / 1e6
            );
        }
    }
    c.bench_function(
        "render a status list: 2^20 indices, 10,000 revoked (ZLIB, RS256, gzip)",
        |b| {
            b.iter(|| {
                render_set(
                    &keys,
                    KeySetName::Api,
                    0,
                    black_box(&entries),
                    ttl,
                    1_764_300_000,
                )
                .expect("renders")
            })
        },
    );
}

fn create_bodies(c: &mut Criterion) {
    let normal = br#"{"name": "CI pipeline", "assignments": ["123:owner"], "expires_in": "90d"}"#;
    let mut hostile = String::from("{");
    for i in 0..7_000 {
        hostile.push_str(&format!(r#""{i:x}":0,"#));
    }
    hostile.push_str(r#""name":"x"}"#);
    eprintln!("hostile create body: {} bytes", hostile.len());
    c.bench_function("parse a create body (3 fields)", |b| {
        b.iter(|| serde_json::from_slice::<CreateTokenBody>(black_box(normal)).expect("parses"))
    });
    c.bench_function("parse a hostile create body (7,000 keys)", |b| {
        b.iter(|| {
            serde_json::from_slice::<CreateTokenBody>(black_box(hostile.as_bytes()))
                .expect("parses")
        })
    });
}

/// Nanoseconds this thread has spent on a CPU (Linux), if the kernel says.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

criterion_group!(benches, hot_paths, create_bodies);
criterion_main!(benches);
