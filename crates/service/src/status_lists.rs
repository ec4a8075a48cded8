//! The Token Status Lists each key set publishes (draft-ietf-oauth-status-list-21), held in
//! memory as the bytes served: for every list its signed `statuslist+jwt`, a gzip copy of it and
//! an `ETag`, and per key set the aggregation document (`{"status_lists": [..]}`).
//!
//! Nothing is rendered per request. When tokens change (revoked, deleted, suspended, resumed),
//! their entries are read by id and set in the bits held, and only their lists are compressed and
//! signed again: this replica's own changes arrive through the service's fan-out
//! (`Service::apply`), every other replica's through the revocation feed (LISTEN/NOTIFY on
//! PostgreSQL, delivered at commit, naming the token), so a change is in every replica's lists
//! within one list's update (milliseconds) of its commit. A whole set is read and rendered at
//! start-up, when the feed reconnects, and when a token names a list not held yet. Every
//! `STATUS_LIST_REFRESH_INTERVAL` (1 s) a replica also asks the store for each set's newest list
//! number, so a list that another replica started is served here within that interval, and
//! renders again the lists whose `exp` is half gone (when the store does not answer, it signs
//! the lists it holds again as they are). While the revocation feed is down, other replicas'
//! changes are announced to no one here, so every interval reads every list again instead: a
//! verifier's staleness stays within `ttl` plus that interval, feed or no feed.
//!
//! A list token is valid for [`VALIDITY_TTLS`] times `ttl` (10 minutes at the default 60 s) and
//! re-signed when half of that is gone, so a verifier always gets a list with at least half its
//! validity left, while one that cannot reach the service keeps a list for at most that long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::HeaderValue;
use serde::Serialize;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::keys::jwks::Rendered;
use crate::keys::{KeyRing, Keys};
use crate::metrics::StatusListMetrics;
use crate::store::{Queries, StatusEntry, Store, TokenStatusEntry};
use crate::tokens::KeySetName;
use crate::tokens::status_list::{BITS, LIST_SIZE, StatusList, aggregation_uri, list_uri};

/// A list token's `exp` is `iat` plus this many `ttl`s; it is signed again at half of that.
pub const VALIDITY_TTLS: u32 = 10;

/// More lists than this in one key set (a billion tokens) means a corrupt row, not growth:
/// such a list number is left out of the lists (logged once) instead of allocating without bound.
const MAX_LISTS: i64 = 1024;

/// The media type of a list token (section 8.2).
pub const CONTENT_TYPE: &str = "application/statuslist+jwt";

/// One list as served.
#[derive(Debug, Clone)]
pub struct ServedList {
    /// The compact JWS.
    pub body: Bytes,
    pub etag: HeaderValue,
    /// The same bytes gzip-compressed, for clients that accept it.
    pub gzip: Bytes,
    pub gzip_etag: HeaderValue,
    /// `lst`, kept to sign the list again without compressing it again.
    lst: String,
}

/// A key set's lists at one moment.
#[derive(Debug, Clone)]
pub struct SetLists {
    /// Indexed by list number.
    pub lists: Vec<ServedList>,
    /// `{"status_lists": [uri, ...]}`.
    pub aggregation: Rendered,
    /// When the oldest of the lists was signed (seconds since the epoch), and by which key: a
    /// change re-signs only the list it touches, and the others are signed again on time.
    signed_at: i64,
    kid: String,
    /// The lists' bits as served (indices permuted), by list number: what a change updates.
    bits: Vec<Arc<StatusList>>,
}

impl SetLists {
    pub fn list(&self, number: u32) -> Option<&ServedList> {
        self.lists.get(number as usize)
    }
}

/// What a replica serves and how long verifiers may cache it.
pub struct StatusLists {
    store: Store,
    keys: Arc<KeyRing>,
    ttl: Duration,
    /// `public, max-age=<ttl>`, made once.
    cache_control: HeaderValue,
    /// Woken by every change seen (this replica's, through the service's fan-out, and the
    /// feed's); several wakes before a render are one.
    changed: Notify,
    /// What changed since the last render: the tokens, or everything (a reload of the feed).
    pending: std::sync::Mutex<Pending>,
    /// By key set index; `None` for a set without lists and before the first render.
    sets: RwLock<[Option<Arc<SetLists>>; 4]>,
    /// Set when a reread failed (the store did not answer): every refresh reads again until one
    /// succeeds, so no change waits for the next re-signing.
    stale: AtomicBool,
    /// Set once a row naming a list past `MAX_LISTS` has been logged: it is skipped, and said once.
    past_bound_logged: AtomicBool,
    metrics: StatusListMetrics,
}

#[derive(Serialize)]
struct ListClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    iat: i64,
    exp: i64,
    ttl: u64,
    status_list: ListBody<'a>,
}

#[derive(Serialize)]
struct ListBody<'a> {
    bits: u8,
    lst: &'a str,
    aggregation_uri: &'a str,
}

#[derive(Serialize)]
struct Aggregation<'a> {
    status_lists: &'a [String],
}

impl StatusLists {
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        ttl: Duration,
        metrics: StatusListMetrics,
    ) -> Self {
        let cache_control = HeaderValue::from_str(&format!("public, max-age={}", ttl.as_secs()))
            .unwrap_or(HeaderValue::from_static("public, max-age=60"));
        Self {
            store,
            keys,
            ttl,
            cache_control,
            changed: Notify::new(),
            pending: std::sync::Mutex::default(),
            sets: RwLock::new([None, None, None, None]),
            stale: AtomicBool::new(false),
            past_bound_logged: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `Cache-Control` of every answer: `public, max-age=<ttl>`.
    pub fn cache_control(&self) -> &HeaderValue {
        &self.cache_control
    }

    /// A key set's lists as they are now (one reference count); `None` for a set without lists,
    /// and until the first render.
    pub fn set(&self, name: KeySetName) -> Option<Arc<SetLists>> {
        let sets = match self.sets.read() {
            Ok(sets) => sets,
            Err(poisoned) => poisoned.into_inner(),
        };
        sets[name.index()].clone()
    }

    fn replace(&self, name: KeySetName, lists: SetLists) {
        let mut sets = match self.sets.write() {
            Ok(sets) => sets,
            Err(poisoned) => poisoned.into_inner(),
        };
        sets[name.index()] = Some(Arc::new(lists));
    }

    /// Says that any status may have changed: the next render reads every list again (the feed
    /// reconnected, and what it missed is unknown).
    pub fn wake(&self) {
        self.pending().everything = true;
        self.changed.notify_one();
    }

    /// Says that these tokens' statuses changed (a change on this replica, through the service's
    /// fan-out, or one the revocation feed announced): the next render reads their entries and
    /// updates the bits it holds, re-signing only the lists they are in.
    pub fn tokens_changed<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        {
            let mut pending = self.pending();
            pending.ids.extend(ids.into_iter().map(str::to_owned));
            if pending.ids.len() > MAX_PENDING_IDS {
                pending.ids.clear();
                pending.everything = true;
            }
        }
        self.changed.notify_one();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Brings the lists up to what changed since the last call: the changed tokens' entries,
    /// read by id and set in the bits held, and only their lists compressed and signed again.
    /// Everything is read again instead when the feed asked for it, when a set is not rendered
    /// yet, when a token names a list this replica does not hold, and after a failed update.
    pub async fn apply_changes(&self) -> Result<()> {
        let Pending { ids, everything } = std::mem::take(&mut *self.pending());
        let rendered = KeySetName::ALL
            .iter()
            .all(|name| !name.has_status_lists() || self.set(*name).is_some());
        if everything || !rendered || self.stale.load(Ordering::Acquire) {
            return self.refresh(true).await;
        }
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.into_iter().collect();
        let entries = match self.read_entries(&ids).await {
            Ok(entries) => entries,
            Err(error) => {
                // Read everything at the next refresh: these changes must not be lost.
                self.stale.store(true, Ordering::Release);
                return Err(error);
            }
        };
        let mut outcome = Ok(());
        for name in KeySetName::ALL {
            let touched: Vec<&TokenStatusEntry> = entries
                .iter()
                .filter(|e| e.key_set == name.as_str())
                .collect();
            if touched.is_empty() {
                continue;
            }
            if let Err(error) = self.update(name, &touched).await {
                self.stale.store(true, Ordering::Release);
                outcome = Err(error);
            }
        }
        outcome
    }

    async fn read_entries(&self, ids: &[String]) -> Result<Vec<TokenStatusEntry>> {
        let mut conn = self.store.acquire().await?;
        Ok(conn.db().status_of_tokens(ids).await?)
    }

    /// Sets the entries in a copy of their lists' bits, and compresses and signs those lists
    /// again; the set's other lists are served as they are.
    async fn update(&self, name: KeySetName, entries: &[&TokenStatusEntry]) -> Result<()> {
        let Some(current) = self.set(name) else {
            return self.render(name).await;
        };
        let mut by_list: std::collections::BTreeMap<usize, (Vec<u32>, Vec<u8>)> =
            std::collections::BTreeMap::new();
        for entry in entries {
            let Some((list, idx, status)) = slot(entry.list, entry.idx, entry.status) else {
                continue;
            };
            if list >= current.bits.len() {
                // A list started since the last render (on another replica, say): read it all.
                return self.render(name).await;
            }
            let (idxs, statuses) = by_list.entry(list).or_default();
            idxs.push(idx);
            statuses.push(status);
        }
        let started = std::time::Instant::now();
        let keys = self.keys.current();
        let ttl = self.ttl;
        let updated = tokio::task::spawn_blocking(move || {
            update_set(
                &keys,
                name,
                &current,
                by_list,
                ttl,
                chrono::Utc::now().timestamp(),
            )
        })
        .await
        .map_err(|e| Error::internal("rendering status lists", e))?;
        match updated {
            Ok(updated) => {
                self.replace(name, updated);
                self.metrics
                    .render_seconds
                    .observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(error) => {
                self.metrics.render_failures.inc();
                Err(error)
            }
        }
    }

    /// Completes when a change has been seen since the last call (several arrive as one).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Reads a key set's statuses from the store and renders its lists (compression, signing
    /// and gzip off the async threads), timed or counted as failed.
    pub async fn render(&self, name: KeySetName) -> Result<()> {
        let started = std::time::Instant::now();
        let rendered = self.read_and_render(name).await;
        match rendered {
            Ok(()) => self
                .metrics
                .render_seconds
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.metrics.render_failures.inc();
            }
        }
        rendered
    }

    async fn read_and_render(&self, name: KeySetName) -> Result<()> {
        let (entries, last) = {
            let mut conn = self.store.acquire().await?;
            let entries = conn.db().status_entries(name).await?;
            let last = conn.db().last_status_list(name).await?;
            (entries, last)
        };
        if (last >= MAX_LISTS || entries.iter().any(|e| e.list >= MAX_LISTS))
            && !self.past_bound_logged.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                key_set = name.as_str(),
                last_list = last,
                max_lists = MAX_LISTS,
                "a stored token names a status list past the bound: its entry is left out of the lists (said once)"
            );
        }
        let keys = self.keys.current();
        let ttl = self.ttl;
        let rendered = tokio::task::spawn_blocking(move || {
            render_set(
                &keys,
                name,
                last,
                &entries,
                ttl,
                chrono::Utc::now().timestamp(),
            )
        })
        .await
        .map_err(|e| Error::internal("rendering status lists", e))??;
        self.replace(name, rendered);
        Ok(())
    }

    /// The periodic part of the work, and the renders at start-up and after a change: renders a
    /// set again when another replica started a list or the signing key changed, and when half
    /// its lists' validity is gone. `reread`: read every set's statuses again now (at start-up,
    /// after a change, and while the revocation feed is down, when changes are announced to no
    /// one). A reread that failed leaves the lists stale, and every refresh reads them again
    /// until one succeeds, so no change waits for the next re-signing. When the store does not
    /// answer, a set whose lists are half gone is signed again as it is, so that verifiers keep
    /// a current list through an outage.
    pub async fn refresh(&self, reread: bool) -> Result<()> {
        let reread = reread || self.stale.load(Ordering::Acquire);
        let now = chrono::Utc::now().timestamp();
        let keys = self.keys.current();
        let mut outcome = Ok(());
        for name in KeySetName::ALL {
            if !name.has_status_lists() {
                continue;
            }
            let current = self.set(name);
            let due = current
                .as_ref()
                .is_some_and(|c| now - c.signed_at >= resign_after(self.ttl));
            if let Some(current) = current.as_ref().filter(|_| !reread && !due) {
                let last = self
                    .store
                    .acquire()
                    .await?
                    .db()
                    .last_status_list(name)
                    .await?;
                let kid = keys.set(name).signing.kid();
                if !started_another(last, current.lists.len()) && kid == current.kid {
                    continue;
                }
            }
            // Read again, so that changes no feed announced (another replica's while the feed is
            // down, a row edited by hand on the embedded store) are in the lists.
            let Err(error) = self.render(name).await else {
                continue;
            };
            if let Some(current) = current.filter(|_| due) {
                tracing::warn!(%error, key_set = name.as_str(), "could not read the status lists; signing them again as they are");
                let keys = keys.clone();
                let ttl = self.ttl;
                let resigned = tokio::task::spawn_blocking(move || {
                    resign_set(&keys, name, &current, ttl, now)
                })
                .await
                .map_err(|e| Error::internal("signing status lists", e))??;
                self.replace(name, resigned);
            }
            if outcome.is_ok() {
                outcome = Err(error);
            }
        }
        if reread {
            self.stale.store(outcome.is_err(), Ordering::Release);
        }
        outcome
    }
}

/// The least time from the start of one update of the lists to the start of the next: changes
/// arriving in between are taken together. A verifier caches a list for `ttl` (60 s by default),
/// so a quarter of a second more is nothing to it.
pub const MIN_UPDATE_SPACING: Duration = Duration::from_millis(250);

/// From the start of an update that took `took` to the start of the next: at least
/// [`MIN_UPDATE_SPACING`], and five times the update, so that a storm of changes (each update
/// compressing and signing a list of 2^20 entries again, up to a tenth of a second for a list
/// with 100,000 revoked tokens) keeps the lists at most a fifth of one core busy on every
/// replica, however fast the changes come.
pub fn update_spacing(took: Duration) -> Duration {
    MIN_UPDATE_SPACING.max(took.saturating_mul(5))
}

/// More changed tokens than this waiting for one render: everything is read again instead.
const MAX_PENDING_IDS: usize = 100_000;

/// What changed since the last render.
#[derive(Default)]
struct Pending {
    ids: std::collections::HashSet<String>,
    everything: bool,
}

/// `current` with the given slots of some of its lists set (`by_list`: list number, and the
/// slots with their statuses): those lists encoded and signed again at `now`, the others as they
/// were. The set's `signed_at` stays the oldest list's, so the others are re-signed on time.
fn update_set(
    keys: &Keys,
    name: KeySetName,
    current: &SetLists,
    by_list: std::collections::BTreeMap<usize, (Vec<u32>, Vec<u8>)>,
    ttl: Duration,
    now: i64,
) -> Result<SetLists> {
    let mut updated = current.clone();
    let permutation = &keys.set(name).status_index;
    for (number, (mut idxs, statuses)) in by_list {
        let number_u32 = u32::try_from(number).unwrap_or(u32::MAX);
        permutation.publish_all(number_u32, &mut idxs);
        let mut bits = StatusList::clone(&current.bits[number]);
        for (idx, status) in idxs.into_iter().zip(statuses) {
            bits.set(u64::from(idx), status);
        }
        let lst = bits.encode();
        updated.lists[number] = sign_list(keys, name, number_u32, lst, ttl, now)?;
        updated.bits[number] = Arc::new(bits);
    }
    Ok(updated)
}

/// Whether the store names a list (`last`) that the `held` lists do not cover yet. A list past
/// `MAX_LISTS` is never rendered, so it never asks for a render either (no render loop on a row
/// that names one).
fn started_another(last: i64, held: usize) -> bool {
    last < MAX_LISTS && last >= i64::try_from(held).unwrap_or(i64::MAX)
}

/// Seconds a list token is valid.
fn validity(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs().saturating_mul(u64::from(VALIDITY_TTLS))).unwrap_or(i64::MAX)
}

/// Seconds after signing when a list is signed again: half its validity.
fn resign_after(ttl: Duration) -> i64 {
    (validity(ttl) / 2).max(1)
}

/// The lists of key set `name`: lists 0 to `last` (and any list an entry names beyond it, for an
/// entry written between the two reads), each index set to its entry's status.
pub fn render_set(
    keys: &Keys,
    name: KeySetName,
    last: i64,
    entries: &[StatusEntry],
    ttl: Duration,
    now: i64,
) -> Result<SetLists> {
    // A list number past the bound comes from a corrupt row: it is left out, never rendered
    // (nor the lists up to it).
    let highest = entries
        .iter()
        .map(|e| e.list)
        .chain([last, 0])
        .filter(|list| *list < MAX_LISTS)
        .max()
        .unwrap_or(0);
    let count = usize::try_from(highest).unwrap_or(0) + 1;
    let mut lists: Vec<StatusList> = (0..count)
        .map(|_| StatusList::new(BITS, LIST_SIZE))
        .collect();
    // The stored slots of each list, published at their permuted indices (as the tokens name
    // them), one batch per list.
    let mut slots: Vec<(Vec<u32>, Vec<u8>)> = vec![(Vec::new(), Vec::new()); count];
    for entry in entries {
        if let Some((list, idx, status)) = slot(entry.list, entry.idx, entry.status)
            && let Some((idxs, statuses)) = slots.get_mut(list)
        {
            idxs.push(idx);
            statuses.push(status);
        }
    }
    let permutation = &keys.set(name).status_index;
    for (number, (list, (mut idxs, statuses))) in lists.iter_mut().zip(slots).enumerate() {
        permutation.publish_all(u32::try_from(number).unwrap_or(u32::MAX), &mut idxs);
        for (idx, status) in idxs.into_iter().zip(statuses) {
            list.set(u64::from(idx), status);
        }
    }
    let encoded: Vec<String> = lists.iter().map(StatusList::encode).collect();
    let mut set = sign_set(keys, name, encoded, ttl, now)?;
    set.bits = lists.into_iter().map(Arc::new).collect();
    Ok(set)
}

/// A stored row's list, index and status as a list holds them; `None` for a row no list can hold
/// (a negative number, an index past the list's size, a status past a byte).
fn slot(list: i64, idx: i64, status: i64) -> Option<(usize, u32, u8)> {
    let (Ok(list), Ok(idx), Ok(status)) = (
        usize::try_from(list),
        u32::try_from(idx),
        u8::try_from(status),
    ) else {
        return None;
    };
    (idx < LIST_SIZE).then_some((list, idx, status))
}

/// The same lists signed again at `now`, with the set's current signing key.
fn resign_set(
    keys: &Keys,
    name: KeySetName,
    current: &SetLists,
    ttl: Duration,
    now: i64,
) -> Result<SetLists> {
    let encoded = current.lists.iter().map(|l| l.lst.clone()).collect();
    let mut set = sign_set(keys, name, encoded, ttl, now)?;
    set.bits = current.bits.clone();
    Ok(set)
}

fn sign_set(
    keys: &Keys,
    name: KeySetName,
    encoded: Vec<String>,
    ttl: Duration,
    now: i64,
) -> Result<SetLists> {
    let set = keys.set(name);
    let mut uris = Vec::with_capacity(encoded.len());
    let mut lists = Vec::with_capacity(encoded.len());
    for (number, lst) in encoded.into_iter().enumerate() {
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        uris.push(list_uri(&set.issuer, number));
        lists.push(sign_list(keys, name, number, lst, ttl, now)?);
    }
    Ok(SetLists {
        lists,
        aggregation: Rendered::json(&Aggregation {
            status_lists: &uris,
        }),
        signed_at: now,
        kid: set.signing.kid().to_owned(),
        bits: Vec::new(),
    })
}

/// List `number` of the set, its `lst` signed at `now` and compressed for serving.
fn sign_list(
    keys: &Keys,
    name: KeySetName,
    number: u32,
    lst: String,
    ttl: Duration,
    now: i64,
) -> Result<ServedList> {
    let set = keys.set(name);
    let aggregation = aggregation_uri(&set.issuer);
    let uri = list_uri(&set.issuer, number);
    let claims = ListClaims {
        sub: &uri,
        iss: &set.issuer,
        iat: now,
        exp: now.saturating_add(validity(ttl)),
        ttl: ttl.as_secs(),
        status_list: ListBody {
            bits: BITS,
            lst: &lst,
            aggregation_uri: &aggregation,
        },
    };
    let jwt = set
        .signing
        .sign_typed("statuslist+jwt", &claims)
        .map_err(|e| Error::internal("signing a status list", e))?;
    served(jwt, lst)
}

fn served(jwt: String, lst: String) -> Result<ServedList> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(jwt.len() / 2), Compression::best());
    std::io::Write::write_all(&mut encoder, jwt.as_bytes())
        .map_err(|e| Error::internal("compressing a status list", e))?;
    let gzip = encoder
        .finish()
        .map_err(|e| Error::internal("compressing a status list", e))?;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jwt.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]);
    let etag = HeaderValue::from_str(&format!("\"{tag}\""))
        .map_err(|e| Error::internal("a status list's ETag", e))?;
    let gzip_etag = HeaderValue::from_str(&format!("\"{tag}-gzip\""))
        .map_err(|e| Error::internal("a status list's ETag", e))?;
    Ok(ServedList {
        body: Bytes::from(jwt),
        etag,
        gzip: Bytes::from(gzip),
        gzip_etag,
        lst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::status_list::{MAX_DECODED_BYTES, StatusRef};

    #[test]
    fn a_list_past_the_bound_never_asks_for_a_render() {
        assert!(!started_another(0, 1));
        assert!(started_another(1, 1), "another replica started list 1");
        assert!(!started_another(MAX_LISTS - 1, MAX_LISTS as usize));
        for past in [MAX_LISTS, MAX_LISTS + 1, i64::MAX] {
            assert!(!started_another(past, 1), "{past}");
        }
        // And rendering such a set stays within the bound.
        let keys = Keys::generate("https://t.example").unwrap();
        let entries = [StatusEntry {
            list: MAX_LISTS + 7,
            idx: 3,
            status: 1,
        }];
        let lists = render_set(
            &keys,
            KeySetName::Api,
            i64::MAX,
            &entries,
            Duration::from_secs(60),
            1_764_300_000,
        )
        .unwrap();
        assert_eq!(lists.lists.len(), 1, "the corrupt numbers are left out");
    }

    #[test]
    fn lists_cover_the_newest_list_and_every_entry_and_show_their_statuses() {
        let keys = Keys::generate("https://t.example").unwrap();
        let entries = [
            StatusEntry {
                list: 0,
                idx: 5,
                status: 1,
            },
            StatusEntry {
                list: 2,
                idx: 7,
                status: 1,
            },
        ];
        let set = render_set(
            &keys,
            KeySetName::Public,
            1,
            &entries,
            Duration::from_secs(60),
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(set.lists.len(), 3);
        let aggregation: serde_json::Value = serde_json::from_slice(&set.aggregation.body).unwrap();
        assert_eq!(
            aggregation["status_lists"][2],
            "https://t.example/v1/access-tokens/public/status-lists/2"
        );
        let lst = &set.lists[2].lst;
        let list = StatusList::decode(BITS, lst, MAX_DECODED_BYTES).unwrap();
        // Slot 7 of list 2 shows at its published (permuted) index, and nowhere else.
        let permutation = &keys.set(KeySetName::Public).status_index;
        let idx = permutation.publish(StatusRef { list: 2, idx: 7 }).idx;
        assert_eq!(list.get(u64::from(idx)), Some(1));
        let set_bits = (0..u64::from(LIST_SIZE))
            .filter(|i| list.get(*i) != Some(0))
            .count();
        assert_eq!(set_bits, 1);
        assert_eq!(list.len(), u64::from(LIST_SIZE));
    }

    #[test]
    fn re_signing_keeps_the_lists_and_changes_iat_and_etag() {
        let keys = Keys::generate("https://t.example").unwrap();
        let ttl = Duration::from_secs(60);
        let first = render_set(&keys, KeySetName::Api, 0, &[], ttl, 1_700_000_000).unwrap();
        let again = resign_set(&keys, KeySetName::Api, &first, ttl, 1_700_000_300).unwrap();
        assert_eq!(first.lists[0].lst, again.lists[0].lst);
        assert_ne!(first.lists[0].etag, again.lists[0].etag);
        assert_eq!(resign_after(ttl), 300);
        assert_eq!(validity(ttl), 600);
    }
}
