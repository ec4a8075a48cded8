//! Micro-benchmarks of the hot pure functions, so that regressions show up in numbers:
//! claim building + signing (every issuance), JWKS rendering (every key change), and verifying
//! one of the service's own tokens (every caller check and introspection).
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;

use access_tokens::keys::jwks::{PublicJwk, render_jwks};
use access_tokens::keys::verify::verify_own;
use access_tokens::keys::{KeySetName, Keys};
use access_tokens::tokens::claims::Claims;
use access_tokens::tokens::{Caller, TokenId, TokenRecord, TokenType, TypeFields};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

fn caller() -> Caller {
    Caller {
        org_id: "123".into(),
        user_id: "u-1".into(),
        roles: vec!["123:owner".into()],
        username: Some("jane@example.com".into()),
        email: Some("jane@example.com".into()),
        read_only: false,
        anonymize: false,
        token_id: None,
        expires_at: None,
        home_org_id: None,
        source_ip: None,
        user_agent: None,
    }
}

fn record(kid: &str) -> TokenRecord {
    TokenRecord {
        id: TokenId::generate(TokenType::Api).to_string(),
        org_id: "123".into(),
        created_by: "u-1".into(),
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
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
