//! `expires_in` of a create request: `ExpiresIn::parse` on any JSON value, then each token type's
//! lifetime rule.
//!
//! Checked: parsing never panics; it accepts exactly what openapi.yaml's `ExpiresIn` allows (a
//! non-negative integer, or a string of 1 to 15 digits, an optional space and an optional unit)
//! unless the value overflows, and the seconds are the documented ones (a bare number string is
//! milliseconds, a year 365 days); a resolved lifetime is the fixed one, or within the type's
//! range (at least `MIN_LIFETIME`, at most its cap), and out-of-range values are refused.

#![no_main]

use access_tokens::tokens::{ExpiresIn, Lifetime, MIN_LIFETIME, TokenType};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check(&value);
    }
    check(&Value::String(text.to_owned()));
});

fn check(value: &Value) {
    let parsed = ExpiresIn::parse(value);
    let expected = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => spec_seconds(s),
        _ => None,
    };
    assert_eq!(
        parsed.as_ref().ok().map(|e| e.seconds()),
        expected,
        "expires_in {value}: {parsed:?}"
    );
    if let Err(message) = &parsed {
        assert!(!message.is_empty());
    }
    for token_type in TokenType::ALL {
        assert!(
            token_type.resolve_lifetime(None).is_ok()
                != matches!(token_type.lifetime(), Lifetime::Required { .. })
        );
        let Ok(e) = parsed.as_ref().copied() else {
            continue;
        };
        let resolved = token_type.resolve_lifetime(Some(e));
        let s = e.seconds();
        match token_type.lifetime() {
            Lifetime::Fixed(fixed) => assert_eq!(resolved, Ok(Some(fixed)), "{token_type}"),
            Lifetime::Optional { cap } => {
                let in_range = (MIN_LIFETIME..=cap).contains(&s);
                assert_eq!(
                    resolved.clone().ok(),
                    in_range.then_some(Some(s)),
                    "{token_type} {s}"
                );
            }
            Lifetime::Required { min, max } => {
                assert!(min >= MIN_LIFETIME);
                let in_range = (min..=max).contains(&s);
                assert_eq!(
                    resolved.clone().ok(),
                    in_range.then_some(Some(s)),
                    "{token_type} {s}"
                );
            }
        }
    }
}

/// The seconds openapi.yaml's string form means, written from the contract rather than from the
/// parser: `^[0-9]{1,15} ?(unit)?$` with ASCII case folding; `None` if it does not match or the
/// milliseconds do not fit in 64 bits.
fn spec_seconds(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=15).contains(&digits) {
        return None;
    }
    let amount: u128 = text[..digits].parse().ok()?;
    let rest = &text[digits..];
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    const UNITS: [(&[&str], u128); 7] = [
        (
            &["", "ms", "msec", "msecs", "millisecond", "milliseconds"],
            1,
        ),
        (&["s", "sec", "secs", "second", "seconds"], 1_000),
        (&["m", "min", "mins", "minute", "minutes"], 60_000),
        (&["h", "hr", "hrs", "hour", "hours"], 3_600_000),
        (&["d", "day", "days"], 86_400_000),
        (&["w", "week", "weeks"], 604_800_000),
        (&["y", "yr", "yrs", "year", "years"], 31_536_000_000),
    ];
    let per_unit = UNITS
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(unit)))?
        .1;
    let ms = u64::try_from(amount * per_unit).ok()?;
    Some(ms / 1_000)
}
