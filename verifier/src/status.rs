//! Status List Tokens (draft-ietf-oauth-status-list section 5.1) fetched on first use, verified
//! as section 8.3 asks, and cached for their `ttl` within the configured bounds. One fetch per
//! list is in flight at a time; while it runs, other tasks keep using a copy that is within its
//! `exp`, and those with none wait for it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use access_tokens_jose::{Error as JoseError, StatusList, jws};

use crate::{Inner, http};

/// The media type of a Status List Token in JWT format (section 8.1).
pub(crate) const MEDIA_TYPE: &str = "application/statuslist+jwt";

/// Why no list could be used.
#[derive(Debug, Clone)]
pub(crate) enum ListError {
    /// Fetching failed (network, HTTP status, size).
    Unavailable(String),
    /// A list was fetched, but it is not a valid Status List Token for this URI.
    Invalid(&'static str),
}

/// A verified, decoded list.
#[derive(Debug)]
pub(crate) struct Cached {
    pub list: StatusList,
    exp: Option<u64>,
    refresh_at: Instant,
}

impl Cached {
    fn expired(&self, now: u64, leeway: u64) -> bool {
        self.exp.is_some_and(|exp| exp < now.saturating_sub(leeway))
    }

    fn fresh(&self, now: u64, leeway: u64) -> bool {
        Instant::now() < self.refresh_at && !self.expired(now, leeway)
    }
}

#[derive(Default)]
struct Refresh {
    /// After a failed fetch, none is tried again before this instant.
    retry_at: Option<Instant>,
    last_error: Option<ListError>,
}

#[derive(Default)]
struct Slot {
    cached: RwLock<Option<Arc<Cached>>>,
    /// Held by the one task that fetches this list.
    refresh: tokio::sync::Mutex<Refresh>,
}

impl Slot {
    fn current(&self) -> Option<Arc<Cached>> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Default)]
pub(crate) struct Lists {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

impl Lists {
    fn slot(&self, uri: &str) -> Arc<Slot> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
        {
            return slot.clone();
        }
        self.slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(uri.to_owned())
            .or_default()
            .clone()
    }
}

/// The list at `uri`, from the cache while fresh, else fetched (one fetch per list at a time).
pub(crate) async fn list(inner: &Inner, uri: &str) -> Result<Arc<Cached>, ListError> {
    let leeway = inner.config.leeway.as_secs();
    let slot = inner.lists.slot(uri);
    let held = slot.current();
    if let Some(cached) = held.as_ref().filter(|c| c.fresh(jws::now(), leeway)) {
        return Ok(cached.clone());
    }
    // A stale copy within its `exp` may still be used while another task fetches.
    let usable = held.filter(|c| !c.expired(jws::now(), leeway));
    let mut refresh = match &usable {
        Some(cached) => match slot.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => return Ok(cached.clone()),
        },
        None => slot.refresh.lock().await,
    };
    if let Some(cached) = slot.current().filter(|c| c.fresh(jws::now(), leeway)) {
        return Ok(cached);
    }
    if let (Some(retry_at), Some(error)) = (refresh.retry_at, &refresh.last_error)
        && Instant::now() < retry_at
    {
        return usable.ok_or_else(|| error.clone());
    }
    match fetch(inner, uri).await {
        Ok(cached) => {
            let cached = Arc::new(cached);
            *slot.cached.write().unwrap_or_else(PoisonError::into_inner) = Some(cached.clone());
            *refresh = Refresh::default();
            Ok(cached)
        }
        Err(error) => {
            refresh.retry_at = Some(Instant::now() + inner.config.status_ttl_min);
            refresh.last_error = Some(error.clone());
            usable.ok_or(error)
        }
    }
}

/// Fetches and verifies the Status List Token at `uri` (section 8.3, steps 2 to 5).
async fn fetch(inner: &Inner, uri: &str) -> Result<Cached, ListError> {
    let config = &inner.config;
    let fetched = http::get(&inner.http, uri, MEDIA_TYPE, config.max_document_bytes)
        .await
        .map_err(ListError::Unavailable)?;
    let fetched_at = Instant::now();
    if fetched.media_type != MEDIA_TYPE {
        return Err(ListError::Invalid(
            "content type is not application/statuslist+jwt",
        ));
    }
    let body = std::str::from_utf8(&fetched.body)
        .map_err(|_| ListError::Invalid("not a compact JWS"))?
        .trim();
    let jws = jws::parse(body).map_err(|e| match e {
        JoseError::Algorithm(_) => ListError::Invalid("not signed with RS256"),
        _ => ListError::Invalid("not a compact JWS"),
    })?;
    if !jws.header.typ_is(jws::TYP_STATUS_LIST) {
        return Err(ListError::Invalid("typ is not statuslist+jwt"));
    }
    let kid = jws
        .header
        .kid
        .as_deref()
        .ok_or(ListError::Invalid("no kid"))?;
    let key = inner
        .keys
        .get(&inner.http, kid, config.max_document_bytes)
        .await
        .ok_or(ListError::Invalid(
            "signed by a key not in the issuer's JWKS",
        ))?;
    let claims = jws.verify(&key).map_err(|e| match e {
        JoseError::Signature => ListError::Invalid("signature does not verify"),
        _ => ListError::Invalid("claims are not a JSON object"),
    })?;
    // Section 8.3 step 4a: the list is the one the token points at, byte for byte.
    if claims.get("sub").and_then(Value::as_str) != Some(uri) {
        return Err(ListError::Invalid("sub is not the token's status list uri"));
    }
    if claims
        .get("iss")
        .is_some_and(|iss| iss.as_str() != Some(&inner.issuer))
    {
        return Err(ListError::Invalid("iss is not the issuer"));
    }
    let now = jws::now();
    let leeway = config.leeway.as_secs();
    let (exp, iat) = jws::check_times(&claims, now, leeway).map_err(|e| match e {
        JoseError::Expired => ListError::Invalid("the list has expired"),
        JoseError::NotYetValid => ListError::Invalid("the list is not valid yet"),
        _ => ListError::Invalid("a date claim is not a NumericDate"),
    })?;
    if iat.is_none() {
        return Err(ListError::Invalid("no iat"));
    }
    if exp.is_none() && config.require_list_exp {
        return Err(ListError::Invalid("the list has no exp"));
    }
    let ttl = match claims.get("ttl") {
        None => None,
        Some(ttl) => Some(
            ttl.as_u64()
                .filter(|&t| t > 0)
                .ok_or(ListError::Invalid("ttl is not a positive integer"))?,
        ),
    };
    let status_list = claims
        .get("status_list")
        .and_then(Value::as_object)
        .ok_or(ListError::Invalid("no status_list object"))?;
    let bits = status_list
        .get("bits")
        .and_then(Value::as_u64)
        .ok_or(ListError::Invalid("status_list.bits is not an integer"))?;
    let lst = status_list
        .get("lst")
        .and_then(Value::as_str)
        .ok_or(ListError::Invalid("status_list.lst is not a string"))?;
    // Past a byte is no allowed value either: 0 is refused as `Bits` like any other.
    let bits = u8::try_from(bits).unwrap_or(0);
    let list = StatusList::decode(bits, lst, config.max_status_list_bytes).map_err(|e| {
        ListError::Invalid(match e {
            crate::DecodeError::Bits => "status_list.bits is not 1, 2, 4 or 8",
            crate::DecodeError::Base64 => "status_list.lst is not base64url",
            crate::DecodeError::TooLarge => "status_list.lst decompresses past the limit",
            _ => "status_list.lst is not ZLIB-compressed",
        })
    })?;
    // Section 13.7: cache for `ttl` after fetching; without one, until `exp`; either way
    // within the configured bounds (section 11.5).
    let cache_for = ttl
        .or_else(|| exp.map(|exp| exp.saturating_sub(now)))
        .map_or(config.status_ttl_max, Duration::from_secs)
        .clamp(config.status_ttl_min, config.status_ttl_max);
    Ok(Cached {
        list,
        exp,
        refresh_at: fetched_at + cache_for,
    })
}
