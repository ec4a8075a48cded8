//! When the service tells of a token's expiry: `token.expiring` at each threshold
//! (`EXPIRY_WARNING_DAYS`, 14, 7 and 1 days before `expires_at` by default), each once, and
//! `token.expired` at `expires_at`.
//!
//! A token created inside a threshold (a 3-day token, under a 7-day threshold) gets that
//! threshold's warning at once, and none for the thresholds already behind it. A token is looked at
//! again only when its next notice is due (its `notice_at`); a scan that comes late (every replica
//! was down) tells only the tightest threshold the token is inside by then, never a stale one.

use chrono::{DateTime, Duration, Utc};

/// The thresholds, in days before expiry, each warned of once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryWarnings {
    /// Largest first, no repeats, each at least one day.
    days: Vec<u32>,
}

/// What a token's expiry calls for when its notice is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// `token.expiring`, for the threshold of this many days.
    Expiring(u32),
    /// `token.expired`.
    Expired,
    /// Nothing now (the thresholds changed since the notice was scheduled).
    Nothing,
}

const DAY: i64 = 86_400;
/// The longest threshold: a year.
const MAX_DAYS: u32 = 366;

impl Default for ExpiryWarnings {
    fn default() -> Self {
        Self {
            days: vec![14, 7, 1],
        }
    }
}

impl ExpiryWarnings {
    /// Comma-separated whole days (`14,7,1`), each from 1 to 366, in any order; empty: no warnings
    /// (`token.expired` is still told).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut days = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let d: u32 = part
                .parse()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| format!("`{part}` is not a number of days from 1 to {MAX_DAYS}"))?;
            if !days.contains(&d) {
                days.push(d);
            }
        }
        days.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self { days })
    }

    pub fn days(&self) -> &[u32] {
        &self.days
    }

    fn span(days: u32) -> Duration {
        Duration::seconds(i64::from(days) * DAY)
    }

    /// The smallest threshold that `remaining` is inside of.
    fn tightest(&self, remaining: Duration) -> Option<u32> {
        self.days
            .iter()
            .rev()
            .copied()
            .find(|d| remaining <= Self::span(*d))
    }

    /// When a token created at `created_at` is first looked at: at once when it is created inside
    /// a threshold, else when it crosses the largest; at its expiry when there are no thresholds;
    /// never without an expiry.
    pub fn first_notice(
        &self,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let expires_at = expires_at?;
        if self.tightest(expires_at - created_at).is_some() {
            return Some(created_at);
        }
        Some(match self.days.first() {
            Some(d) => expires_at - Self::span(*d),
            None => expires_at,
        })
    }

    /// What is due for a token expiring at `expires_at`, looked at `now`, and when it is next
    /// looked at (`None`: nothing is left to tell).
    pub fn due(
        &self,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> (Notice, Option<DateTime<Utc>>) {
        if expires_at <= now {
            return (Notice::Expired, None);
        }
        let remaining = expires_at - now;
        match self.tightest(remaining) {
            Some(t) => {
                // The next threshold below this one; the expiry itself after the last.
                let next = match self.days.iter().copied().find(|d| *d < t) {
                    Some(d) => expires_at - Self::span(d),
                    None => expires_at,
                };
                (Notice::Expiring(t), Some(next))
            }
            None => (
                Notice::Nothing,
                Some(match self.days.first() {
                    Some(d) => expires_at - Self::span(*d),
                    None => expires_at,
                }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days: f64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds((days * 86_400_000.0) as i64)
    }

    /// Walks a token's notices from its creation as a scan every `step` days would.
    fn notices(created: f64, expires: f64, step: f64) -> Vec<Notice> {
        let w = ExpiryWarnings::default();
        let mut next = w.first_notice(at(created), Some(at(expires)));
        let mut now = created;
        let mut told = Vec::new();
        while let Some(due) = next {
            while at(now) < due {
                now += step;
            }
            let (notice, then) = w.due(at(expires), at(now));
            if notice != Notice::Nothing {
                told.push(notice);
            }
            next = then;
        }
        told
    }

    #[test]
    fn a_long_token_is_warned_at_each_threshold_once_then_told_it_expired() {
        use Notice::*;
        assert_eq!(
            notices(0.0, 90.0, 0.001),
            [Expiring(14), Expiring(7), Expiring(1), Expired]
        );
    }

    #[test]
    fn a_token_created_inside_a_threshold_gets_that_one_and_none_behind_it() {
        use Notice::*;
        assert_eq!(
            notices(0.0, 3.0, 0.001),
            [Expiring(7), Expiring(1), Expired]
        );
        assert_eq!(notices(0.0, 0.5, 0.001), [Expiring(1), Expired]);
        assert_eq!(
            notices(0.0, 7.0, 0.001),
            [Expiring(7), Expiring(1), Expired]
        );
    }

    #[test]
    fn a_late_scan_tells_only_the_tightest_threshold() {
        use Notice::*;
        // Scans ten days apart: the 14-day crossing (day 11) is seen on day 20, 5 days left.
        assert_eq!(notices(0.0, 25.0, 10.0), [Expiring(7), Expired]);
    }

    #[test]
    fn thresholds_parse_in_any_order_and_refuse_nonsense() {
        assert_eq!(
            ExpiryWarnings::parse("1, 7,14,7").unwrap().days(),
            [14, 7, 1]
        );
        assert!(ExpiryWarnings::parse("").unwrap().days().is_empty());
        assert!(ExpiryWarnings::parse("0").is_err());
        assert!(ExpiryWarnings::parse("two").is_err());
        assert!(ExpiryWarnings::parse("400").is_err());
        assert_eq!(notices_without_thresholds(), [Notice::Expired]);
    }

    fn notices_without_thresholds() -> Vec<Notice> {
        let w = ExpiryWarnings::parse("").unwrap();
        let first = w.first_notice(at(0.0), Some(at(5.0))).unwrap();
        assert_eq!(first, at(5.0));
        vec![w.due(at(5.0), first).0]
    }
}
