//! `expires_in`: how long a token lives, as clients send it.
//!
//! Clients send either a JSON integer of seconds or a string in the notation of the `ms` package
//! (`"1h"`, `"7d"`, `"2 days"`; a bare number string is milliseconds). A year is 365 days here, so
//! that `"1y"` fits the 365-day cap of api tokens; `ms` itself counts 365.25.

use serde_json::Value;

/// A lifetime in whole seconds, parsed from the request but not yet checked against a type's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresIn(u64);

impl ExpiresIn {
    pub fn seconds(self) -> u64 {
        self.0
    }

    pub fn from_seconds(seconds: u64) -> Self {
        Self(seconds)
    }

    /// Parses the JSON value of `expires_in`.
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => n
                .as_u64()
                .map(Self)
                .ok_or_else(|| "expires_in must be a whole, positive number of seconds".to_owned()),
            Value::String(s) => parse_text(s).map(Self),
            _ => {
                Err("expires_in must be a number of seconds or a string such as \"7d\"".to_owned())
            }
        }
    }
}

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;
const WEEK_MS: u64 = 7 * DAY_MS;
const YEAR_MS: u64 = 365 * DAY_MS;

fn unit_ms(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND_MS,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE_MS,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR_MS,
        "d" | "day" | "days" => DAY_MS,
        "w" | "week" | "weeks" => WEEK_MS,
        "y" | "yr" | "yrs" | "year" | "years" => YEAR_MS,
        _ => return None,
    })
}

fn parse_text(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "expires_in {text:?} is not a duration: use seconds as a number, or digits and a unit such as \"30m\", \"12h\", \"7d\""
        )
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid());
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let per_unit = unit_ms(&unit).ok_or_else(invalid)?;
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    let ms = amount.checked_mul(per_unit).ok_or_else(invalid)?;
    Ok(ms / SECOND_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_notations_clients_send() {
        let cases = [
            (json!(3600), 3600),
            (json!("3600000"), 3600),
            (json!("1h"), 3600),
            (json!("1 hour"), 3600),
            (json!("2 hours"), 7200),
            (json!("90s"), 90),
            (json!("45 seconds"), 45),
            (json!("30m"), 1800),
            (json!("10 minutes"), 600),
            (json!("7d"), 604_800),
            (json!("2 days"), 172_800),
            (json!("1w"), 604_800),
            (json!("2 weeks"), 1_209_600),
            (json!("1y"), 31_536_000),
            (json!("1 year"), 31_536_000),
            (json!("60000ms"), 60),
            (json!("60000 milliseconds"), 60),
            (json!("1H"), 3600),
        ];
        for (input, seconds) in cases {
            assert_eq!(
                ExpiresIn::parse(&input).map(ExpiresIn::seconds),
                Ok(seconds),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        let cases = [
            (json!(-1), "negative"),
            (json!(1.5), "fractional seconds"),
            (json!(""), "empty"),
            (json!("h"), "no digits"),
            (json!("1.5h"), "decimal"),
            (json!("-1h"), "negative"),
            (json!("1  h"), "two spaces"),
            (json!(" 1h"), "leading space"),
            (json!("1h "), "trailing space"),
            (json!("1 fortnight"), "unknown unit"),
            (json!("99999999999999999999d"), "overflow"),
            (json!("999999999999999y"), "overflow after the unit"),
            (json!(true), "boolean"),
            (json!(["1h"]), "array"),
            (json!({"h": 1}), "object"),
        ];
        for (input, why) in cases {
            assert!(
                ExpiresIn::parse(&input).is_err(),
                "{input} must fail: {why}"
            );
        }
    }
}
