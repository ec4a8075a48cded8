//! `last_used`: which tokens were seen in use today. Marks are coalesced in memory and written in
//! batches by a background task (`flush`), at most once per token per day per replica, so no
//! request waits on a database write. A crash loses at most the marks of the last flush interval.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::store::{Queries, Store};
use chrono::{NaiveDate, Utc};

#[derive(Default)]
pub struct UsageTracker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    day: Option<NaiveDate>,
    /// Marked today and written (or being written): not marked again today.
    seen: HashSet<String>,
    /// Marked today, not yet written.
    pending: Vec<String>,
}

impl UsageTracker {
    /// Notes that `token_id` was used now. Cheap: a set lookup under a short lock.
    pub fn mark(&self, token_id: &str) {
        let today = Utc::now().date_naive();
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.day != Some(today) {
            state.day = Some(today);
            state.seen.clear();
        }
        if !state.seen.contains(token_id) {
            state.seen.insert(token_id.to_owned());
            state.pending.push(token_id.to_owned());
        }
    }

    /// Writes the pending marks in one statement. On failure they are kept for the next flush.
    pub async fn flush(&self, store: &Store) -> Result<usize, sqlx::Error> {
        let (day, pending) = {
            let mut state = match self.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            (state.day, std::mem::take(&mut state.pending))
        };
        let (Some(day), false) = (day, pending.is_empty()) else {
            return Ok(0);
        };
        let result = async {
            let mut conn = store.acquire().await?;
            conn.db().mark_used(&pending, day).await
        }
        .await;
        if let Err(error) = result {
            let mut state = match self.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            if state.day == Some(day) {
                state.pending.extend(pending);
            }
            return Err(error);
        }
        Ok(pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_pending_once_per_day_however_often_it_is_used() {
        let tracker = UsageTracker::default();
        for _ in 0..1000 {
            tracker.mark("api_a");
        }
        tracker.mark("api_b");
        let state = tracker.state.lock().unwrap();
        assert_eq!(state.pending, ["api_a", "api_b"]);
    }
}
