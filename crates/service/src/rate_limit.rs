//! Rate limits: token creation per organization and per caller, failed authentication per client
//! address, and failed introspection-client authentication per client id. Each is a fixed window
//! of one minute per key, starting at the key's first event, counted in memory on each replica (so
//! N replicas allow up to N times the limit); 0 turns a limit off.
//!
//! A fixed window lets a client spend up to twice the limit across a window's edge: the limits are
//! meant to be generous brakes on runaway scripts and password-spraying style guessing, not exact
//! quotas.
//!
//! Work and memory are bounded whatever the clients do. Keys are spread over `SHARDS` maps, each
//! behind its own lock, by a hash with a per-process random key (so no client can aim all its keys
//! at one shard). Each shard keeps two generations of windows: the current one, and the one before
//! it. A window lives in the generation it started in; when a generation has been current for a
//! whole window, it becomes the previous one and the previous one is dropped as a whole: every
//! window in it started more than a minute ago. So a request does O(1) work (one hash, one or two
//! lookups), and expiry costs one map drop per shard per minute, amortised over the insertions
//! that filled it and done after the shard's lock is released. Nothing ever scans the windows.
//!
//! Each generation of a limiter holds at most `MAX_KEYS` windows (so a limiter at most twice that).
//! What happens to a new key beyond that is the limiter's `Overflow`:
//! - Failed authentications (`Overflow::Untracked`): the new address is not counted. Turning
//!   every new address away instead would let anyone with enough addresses (an IPv6 prefix is
//!   plenty) lock every other client out; addresses already counted stay limited, and an attacker
//!   who controls more addresses than the cap already gets the cap times the limit in guesses
//!   each minute. A warning is logged once per shard and generation, so operators see it.
//! - Token creation (`Overflow::Refused`): keys are authenticated callers and organizations, so
//!   a full map means an unusual flood of them; new ones are refused (429) until the shard's
//!   generation turns, rather than allowed unlimited creation.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimitSettings;
use crate::error::Error;
use crate::tokens::Caller;

const WINDOW: Duration = Duration::from_secs(60);
/// Independent maps per limiter: requests for keys of different shards never wait for each other.
const SHARDS: usize = 16;
/// Windows started per limiter in one generation at most; with the previous generation, a limiter
/// holds at most twice as many: at about 100 bytes per window (the key, the count and the map's
/// overhead), 6-7 MB.
pub const MAX_KEYS: usize = 32_768;

/// What a limiter does with a new key once it holds `MAX_KEYS` windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The event is allowed and not counted.
    Untracked,
    /// The event is refused until the shard's windows turn over.
    Refused,
}

/// Counts events per key in one-minute windows.
pub struct RateLimiter {
    per_minute: u32,
    overflow: Overflow,
    shard_capacity: usize,
    /// How long a key's window lasts: a minute, but for the revocations by possession (an hour).
    window: Duration,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

struct Shard {
    /// When `current` became the current generation: every window in it started at or after this.
    since: Instant,
    current: HashMap<Box<str>, Window>,
    /// Windows that started in the generation before `current`, some of them still running.
    previous: HashMap<Box<str>, Window>,
    /// Whether a full shard has been logged in this generation.
    warned: bool,
}

impl Shard {
    /// Makes `current` a generation younger than a window. Returns what was dropped, for the
    /// caller to free after releasing the lock.
    fn turn(&mut self, now: Instant, window: Duration) -> Option<HashMap<Box<str>, Window>> {
        let age = now.saturating_duration_since(self.since);
        if age < window {
            return None;
        }
        self.since = now;
        self.warned = false;
        let current = std::mem::take(&mut self.current);
        if age < window * 2 {
            // The windows of `previous` all started before the old `since`, over a window ago.
            Some(std::mem::replace(&mut self.previous, current))
        } else {
            // Both generations are over.
            drop(std::mem::take(&mut self.previous));
            Some(current)
        }
    }

    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

impl RateLimiter {
    /// A limiter whose full map leaves new keys untracked.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::new(per_minute, Overflow::Untracked, MAX_KEYS)
    }

    pub fn new(per_minute: u32, overflow: Overflow, max_keys: usize) -> Self {
        let now = Instant::now();
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    since: now,
                    current: HashMap::new(),
                    previous: HashMap::new(),
                    warned: false,
                })
            })
            .collect();
        Self {
            per_minute,
            overflow,
            window: WINDOW,
            shard_capacity: max_keys.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards,
        }
    }

    /// The same limiter with windows of `window` instead of a minute (`per_minute` is then the
    /// events allowed per window).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Counts one event for `key`. `Err(retry_after)` when the key has used up its window: the
    /// event is refused and not counted.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.update(key, true, Instant::now())
    }

    /// Whether `key` has used up its window, without counting anything.
    pub fn exhausted(&self, key: &str) -> Result<(), Duration> {
        self.update(key, false, Instant::now())
    }

    /// Windows held, in both generations.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update(&self, key: &str, count: bool, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        // `usize` from `u64`: the low bits are as good as any.
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut shard = lock(&self.shards[index]);
        let dropped = shard.turn(now, self.window);
        let result = self.update_shard(&mut shard, key, count, now);
        drop(shard);
        // Freeing a generation's windows happens outside the lock.
        drop(dropped);
        result
    }

    fn update_shard(
        &self,
        shard: &mut Shard,
        key: &str,
        count: bool,
        now: Instant,
    ) -> Result<(), Duration> {
        let window_length = self.window;
        let running = |w: &Window| now.saturating_duration_since(w.started) < window_length;
        let Shard {
            current, previous, ..
        } = shard;
        // Windows of `current` are all running (the generation is younger than a window).
        let window = match current.get_mut(key) {
            Some(window) => Some(window),
            None => previous.get_mut(key).filter(|w| running(w)),
        };
        if let Some(window) = window {
            let age = now.saturating_duration_since(window.started);
            if window.count >= self.per_minute {
                return Err(window_length.saturating_sub(age));
            }
            if count {
                window.count += 1;
            }
            return Ok(());
        }
        if !count {
            return Ok(());
        }
        // An expired window of the same key in `previous` is replaced by the new one.
        previous.remove(key);
        if shard.current.len() >= self.shard_capacity {
            if !shard.warned {
                shard.warned = true;
                tracing::warn!(
                    max_keys = self.shard_capacity * SHARDS,
                    overflow = ?self.overflow,
                    "rate limiter full: new keys are not counted, or refused, until its windows turn over"
                );
            }
            return match self.overflow {
                Overflow::Untracked => Ok(()),
                Overflow::Refused => {
                    Err(window_length.saturating_sub(now.saturating_duration_since(shard.since)))
                }
            };
        }
        shard.current.insert(
            key.into(),
            Window {
                started: now,
                count: 1,
            },
        );
        Ok(())
    }
}

/// A poisoned shard still holds valid counts: a panic elsewhere never disables a limit.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    match shard.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The service's limits.
pub struct RateLimits {
    create_per_org: RateLimiter,
    create_per_caller: RateLimiter,
    change_per_org: RateLimiter,
    change_per_caller: RateLimiter,
    failed_auth_per_address: RateLimiter,
    failed_introspection_per_client: RateLimiter,
    /// Requests of `POST /revoke` per client address, per hour.
    revoke_per_address: RateLimiter,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        let refused = |per_minute| RateLimiter::new(per_minute, Overflow::Refused, MAX_KEYS);
        Self {
            create_per_org: refused(settings.create_per_org),
            create_per_caller: refused(settings.create_per_caller),
            change_per_org: refused(settings.change_per_org),
            change_per_caller: refused(settings.change_per_caller),
            failed_auth_per_address: RateLimiter::per_minute(settings.failed_auth_per_address),
            failed_introspection_per_client: RateLimiter::per_minute(
                settings.failed_introspection_per_client,
            ),
            revoke_per_address: RateLimiter::per_minute(settings.revoke_per_address)
                .with_window(Duration::from_secs(3600)),
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

    /// Counts a revocation, suspension or resumption the caller is about to make (each one
    /// re-renders a status list on every replica): 429 once the caller or its organization has
    /// used up its minute.
    pub fn change(&self, caller: &Caller) -> Result<(), Error> {
        let caller_key = format!("{}\u{0}{}", caller.org_id, caller.user_id);
        self.change_per_caller.check(&caller_key).map_err(|retry| {
            Error::TooManyRequests(
                "too many revocations, suspensions and resumptions by this caller; retry later",
                retry,
            )
        })?;
        self.change_per_org.check(&caller.org_id).map_err(|retry| {
            Error::TooManyRequests(
                "too many revocations, suspensions and resumptions in this organization; retry later",
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

    /// 429 while the introspection client has used up its failed authentications.
    pub fn check_introspection_client(&self, client_id: &str) -> Result<(), Error> {
        self.failed_introspection_per_client
            .exhausted(client_id)
            .map_err(|retry| {
                Error::TooManyRequests(
                    "too many failed authentications of this introspection client; retry later",
                    retry,
                )
            })
    }

    /// Counts a request of revocation by possession from the address: 429 once it has used up
    /// its hour.
    pub fn revoke_by_possession(&self, address: &str) -> Result<(), Error> {
        self.revoke_per_address.check(address).map_err(|retry| {
            Error::TooManyRequests(
                "too many revocation requests from this address; retry later",
                retry,
            )
        })
    }

    /// Counts a failed authentication of a configured introspection client.
    pub fn failed_introspection_client(&self, client_id: &str) {
        let _ = self.failed_introspection_per_client.check(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(limiter: &RateLimiter, key: &str, now: Instant) -> Result<(), Duration> {
        limiter.update(key, true, now)
    }

    fn look(limiter: &RateLimiter, key: &str, now: Instant) -> Result<(), Duration> {
        limiter.update(key, false, now)
    }

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
        for i in 0..1000 {
            assert!(off.check("a").is_ok());
            assert!(off.check(&i.to_string()).is_ok());
        }
        assert!(off.is_empty(), "a limit that is off keeps nothing");
    }

    #[test]
    fn retry_after_is_what_is_left_of_the_keys_window_and_then_the_key_starts_again() {
        let limiter = RateLimiter::per_minute(2);
        let t0 = Instant::now();
        assert!(at(&limiter, "a", t0).is_ok());
        assert!(at(&limiter, "a", t0 + Duration::from_secs(5)).is_ok());
        assert_eq!(
            at(&limiter, "a", t0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert_eq!(
            look(&limiter, "a", t0 + Duration::from_secs(59)),
            Err(Duration::from_secs(1))
        );
        // The window began at the first event, not the second.
        let later = t0 + WINDOW;
        assert!(look(&limiter, "a", later).is_ok());
        assert!(at(&limiter, "a", later).is_ok());
        assert!(at(&limiter, "a", later).is_ok());
        assert_eq!(at(&limiter, "a", later), Err(WINDOW));
    }

    #[test]
    fn a_window_that_started_before_its_generation_turned_still_counts_to_its_end() {
        let limiter = RateLimiter::per_minute(1);
        let t0 = Instant::now();
        // Late in the first generation...
        let late = t0 + Duration::from_secs(50);
        assert!(at(&limiter, "a", late).is_ok());
        // ...the window outlives the generation's turn (another key turns the shard)...
        for i in 0..200 {
            assert!(at(&limiter, &format!("k{i}"), t0 + Duration::from_secs(65)).is_ok());
        }
        assert_eq!(
            at(&limiter, "a", t0 + Duration::from_secs(70)),
            Err(Duration::from_secs(40))
        );
        // ...and ends a window after it started.
        assert!(at(&limiter, "a", late + WINDOW).is_ok());
    }

    #[test]
    fn generations_over_a_window_old_are_dropped_whole() {
        let limiter = RateLimiter::per_minute(5);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert!(at(&limiter, &i.to_string(), t0).is_ok());
        }
        assert_eq!(limiter.len(), 1000);
        // After two windows, any event on a shard drops both of its generations.
        let t2 = t0 + WINDOW * 2;
        for i in 0..1000 {
            assert!(look(&limiter, &i.to_string(), t2).is_ok());
        }
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_100k_distinct_keys() {
        let cap = 10_000;
        let untracked = RateLimiter::new(1, Overflow::Untracked, cap);
        let refused = RateLimiter::new(1, Overflow::Refused, cap);
        let t0 = Instant::now();
        let (mut refusals, mut limited) = (0, 0);
        for i in 0..100_000 {
            let key = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
            assert!(
                at(&untracked, &key, t0).is_ok(),
                "untracked keys are allowed"
            );
            if let Err(retry) = at(&refused, &key, t0) {
                assert!(retry <= WINDOW && retry > Duration::ZERO);
                refusals += 1;
            }
            if at(&untracked, &key, t0).is_err() {
                limited += 1;
            }
        }
        let bound = cap.div_ceil(SHARDS) * SHARDS;
        for limiter in [&untracked, &refused] {
            assert!(limiter.len() <= bound, "{} > {bound}", limiter.len());
            // Full, give or take a hash-skewed shard.
            assert!(limiter.len() >= cap * 9 / 10, "{}", limiter.len());
        }
        // Keys counted before the limiter filled up are still limited; the rest are not counted.
        assert_eq!(limited, untracked.len());
        assert_eq!(refusals, 100_000 - refused.len());
        // A window later, the shards take new keys again, and two windows later the first
        // generation is gone.
        let t1 = t0 + WINDOW;
        assert!(at(&refused, "late", t1).is_ok());
        assert!(at(&untracked, "late", t1).is_ok());
        assert!(at(&untracked, "late", t1).is_err());
        assert!(untracked.len() <= bound + 1);
        let t2 = t0 + WINDOW * 2 + Duration::from_secs(1);
        for i in 0..1000 {
            assert!(at(&untracked, &format!("new{i}"), t2).is_ok());
        }
        assert!(untracked.len() <= 1001, "{}", untracked.len());
    }
}
