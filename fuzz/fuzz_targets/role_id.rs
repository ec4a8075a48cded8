//! Role ids: `RoleId::parse`, `roles::parse_requested` (the `assignments` of a create request) and
//! `roles::grant` (which roles a new token gets). The input is split at 0xFF bytes into strings.
//!
//! Checked: a role id is accepted exactly when openapi.yaml's `RoleId` allows it (pattern
//! `^[^:\s\x00-\x1f\x7f-\x9f]+:[^\s\x00-\x1f\x7f-\x9f]+$` with ECMAScript's `\s`, at most 255
//! characters), and keeps its text and organization; a request list is accepted exactly when it
//! has at most `MAX_ASSIGNMENTS` valid ids, else it is a 400; a granted role is always one the
//! caller holds, in the caller's organization, without duplicates (a token never holds more than
//! its creator), and a refusal is a 403.

#![no_main]

use access_tokens::tokens::Error;
use access_tokens::tokens::roles::{MAX_ASSIGNMENTS, RoleId, grant, parse_requested};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<String> = data
        .split(|b| *b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    for part in &parts {
        check_role_id(part);
    }

    let requested = match parse_requested(&parts) {
        Ok(ids) => {
            assert!(parts.len() <= MAX_ASSIGNMENTS);
            assert_eq!(ids.len(), parts.len());
            for (id, part) in ids.iter().zip(&parts) {
                assert_eq!(id.as_str(), part);
            }
            ids
        }
        Err(Error::Invalid(_)) => {
            assert!(parts.len() > MAX_ASSIGNMENTS || parts.iter().any(|p| !spec_allows(p)));
            Vec::new()
        }
        Err(other) => panic!("parse_requested failed with {other:?}, not a 400"),
    };

    // The caller holds every other string; its organization is the first one's.
    let caller_org = parts[0]
        .split_once(':')
        .map_or(parts[0].as_str(), |(org, _)| org);
    let held: Vec<String> = parts.iter().step_by(2).cloned().collect();
    check_grant(caller_org, &held, None);
    check_grant(caller_org, &held, Some(requested));
});

fn check_role_id(text: &str) {
    let parsed = RoleId::parse(text);
    assert_eq!(
        parsed.is_ok(),
        spec_allows(text),
        "role id {text:?}: {parsed:?}"
    );
    if let Ok(id) = parsed {
        assert_eq!(id.as_str(), text);
        let (org, _) = text.split_once(':').expect("has a colon");
        assert_eq!(id.org_id(), org);
    }
}

fn check_grant(caller_org: &str, held: &[String], requested: Option<Vec<RoleId>>) {
    let asked: Option<Vec<String>> = requested
        .as_ref()
        .map(|ids| ids.iter().map(|id| id.as_str().to_owned()).collect());
    match grant(caller_org, held, requested) {
        Ok(granted) => {
            for (i, role) in granted.iter().enumerate() {
                assert!(
                    held.contains(role),
                    "granted {role:?}, which the caller does not hold"
                );
                let id = RoleId::parse(role).expect("a granted role is a role id");
                assert_eq!(
                    id.org_id(),
                    caller_org,
                    "granted {role:?} of another organization"
                );
                assert!(!granted[..i].contains(role), "granted {role:?} twice");
            }
            let expected: Vec<&String> = match &asked {
                // Inherited: every held role of the caller's organization, first occurrence.
                None => held
                    .iter()
                    .filter(|r| RoleId::parse(r).is_ok_and(|id| id.org_id() == caller_org))
                    .collect(),
                Some(asked) => asked.iter().collect(),
            };
            let mut deduplicated: Vec<&String> = Vec::new();
            for role in expected {
                if !deduplicated.contains(&role) {
                    deduplicated.push(role);
                }
            }
            assert_eq!(granted.iter().collect::<Vec<_>>(), deduplicated);
        }
        Err(Error::Forbidden(_)) => {
            let asked = asked.expect("inheriting roles is never refused");
            assert!(asked.iter().any(|r| {
                !held.contains(r) || r.split_once(':').map(|(org, _)| org) != Some(caller_org)
            }));
        }
        Err(other) => panic!("grant failed with {other:?}, not a 403"),
    }
}

/// openapi.yaml's `RoleId`, written from the contract: `<org>:<slug>`, the organization without
/// a colon, neither with whitespace (ECMAScript `\s`) or C0/DEL/C1 control characters, at most 255
/// characters.
fn spec_allows(text: &str) -> bool {
    let allowed =
        |c: char| !is_ecmascript_space(c) && !matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}');
    let Some((org, slug)) = text.split_once(':') else {
        return false;
    };
    text.chars().count() <= 255
        && !org.is_empty()
        && !slug.is_empty()
        && org.chars().all(allowed)
        && slug.chars().all(allowed)
}

/// ECMAScript's `\s`: WhiteSpace and LineTerminator (ECMA-262, 22.2.2.9).
fn is_ecmascript_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}
