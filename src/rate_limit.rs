//! Rate limits: token creation per organization and per caller, and failed authentication per
//! client address. Each is a fixed window of one minute per key, counted in memory on each replica
//! (so N replicas allow up to N times the limit); 0 turns a limit off.
//!
//! A fixed window lets a client spend up to twice the limit across a window's edge: the limits are
//! meant to be generous brakes on runaway scripts and password-spraying style guessing, not exact
//! quotas. Memory stays bounded: expired windows are dropped whenever the map has grown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimitSettings;
use crate::error::Error;
use crate::tokens::Caller;

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many keys, expired windows are swept before a new key is added.
const SWEEP_ABOVE: usize = 10_000;

/// Counts events per key in one-minute windows.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`. `Err(retry_after)` when the key has used up its window: the
    /// event is refused and not counted.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.update(key, true)
    }

    /// Whether `key` has used up its window, without counting anything.
    pub fn exhausted(&self, key: &str) -> Result<(), Duration> {
        self.update(key, false)
    }

    fn update(&self, key: &str, count: bool) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = match self.windows.lock() {
            Ok(windows) => windows,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(window) = windows.get_mut(key)
            && now.duration_since(window.started) < WINDOW
        {
            if window.count >= self.per_minute {
                return Err(WINDOW - now.duration_since(window.started));
            }
            if count {
                window.count += 1;
            }
            return Ok(());
        }
        if !count {
            return Ok(());
        }
        if windows.len() >= SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        windows.insert(
            key.to_owned(),
            Window {
                started: now,
                count: 1,
            },
        );
        Ok(())
    }
}

/// The service's limits.
pub struct RateLimits {
    create_per_org: RateLimiter,
    create_per_caller: RateLimiter,
    failed_auth_per_address: RateLimiter,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            create_per_org: RateLimiter::per_minute(settings.create_per_org),
            create_per_caller: RateLimiter::per_minute(settings.create_per_caller),
            failed_auth_per_address: RateLimiter::per_minute(settings.failed_auth_per_address),
        }
    }

    /// Counts a token the caller is about to create: 429 once the caller or its organization has
    /// used up its minute.
    pub fn create(&self, caller: &Caller) -> Result<(), Error> {
        let caller_key = format!("{}\u{0}{}", caller.org_id, caller.user_id);
        self.create_per_caller.check(&caller_key).map_err(|retry| {
            Error::TooManyRequests("too many tokens created by this caller; retry later", retry)
        })?;
        self.create_per_org.check(&caller.org_id).map_err(|retry| {
            Error::TooManyRequests(
                "too many tokens created in this organization; retry later",
                retry,
            )
        })
    }

    /// 429 while the address has used up its failed authentications.
    pub fn check_address(&self, address: &str) -> Result<(), Error> {
        self.failed_auth_per_address
            .exhausted(address)
            .map_err(|retry| {
                Error::TooManyRequests(
                    "too many failed authentications from this address; retry later",
                    retry,
                )
            })
    }

    /// Counts a failed authentication from the address.
    pub fn failed_authentication(&self, address: &str) {
        let _ = self.failed_auth_per_address.check(address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_limit_per_window_and_others_are_not_affected() {
        let limiter = RateLimiter::per_minute(3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let retry = limiter.check("a").unwrap_err();
        assert!(
            retry <= WINDOW && retry > Duration::from_secs(55),
            "{retry:?}"
        );
        assert!(limiter.exhausted("a").is_err());
        assert!(limiter.exhausted("b").is_ok());
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn looking_counts_nothing_and_zero_is_no_limit() {
        let limiter = RateLimiter::per_minute(1);
        for _ in 0..10 {
            assert!(limiter.exhausted("a").is_ok());
        }
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
        let off = RateLimiter::per_minute(0);
        for _ in 0..1000 {
            assert!(off.check("a").is_ok());
        }
    }

    #[test]
    fn expired_windows_are_swept_when_the_map_grows() {
        let limiter = RateLimiter::per_minute(1);
        {
            let mut windows = limiter.windows.lock().unwrap();
            let old = Instant::now() - WINDOW - Duration::from_secs(1);
            for i in 0..SWEEP_ABOVE {
                windows.insert(
                    i.to_string(),
                    Window {
                        started: old,
                        count: 1,
                    },
                );
            }
        }
        assert!(limiter.check("new").is_ok());
        assert_eq!(limiter.windows.lock().unwrap().len(), 1);
    }
}
