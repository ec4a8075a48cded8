//! Token creations on PostgreSQL, written in groups (group commit by concurrency).
//!
//! Each creation is queued; a writer takes everything that is waiting (up to [`MAX_GROUP`]) and
//! writes it, records and audit events, in one statement: one transaction and one commit instead
//! of one per token. Nothing waits for a group to fill: a creation that finds a writer idle is
//! written at once, alone; groups form only while the writer is busy,
//! that is under load, where they cut PostgreSQL's CPU per token to about a quarter.
//!
//! The writer keeps its connection from one group to the next while creations keep coming, and
//! gives it back to the pool once nothing waits: a connection taken from the pool costs a round
//! trip when it is taken and another when it is given back (sqlx tests it both ways), and under
//! load the next group would wait for both. A held connection that its statement finds closed (the
//! server restarted, an operator ended the session) is given back and the group written on one
//! from the pool, as if it had not been held.
//!
//! Durability is that of a single insert: a caller is answered only after the statement holding its
//! row has committed. A statement is atomic, so a group that fails has written nothing; its rows are
//! then written one by one, each in its own statement, so that a failure is only its own request's.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::errors::connection_closed;
use super::pool::Pooler;
use super::postgres;
use super::queries::{Db, Queries, Result};
use super::statements::Pg;
use super::timed_acquire;
use crate::metrics::StoreMetrics;
use crate::tokens::{Actor, TokenRecord};

/// Writers, and so statements in flight at once: one, and the next group gathers while it
/// writes. A creation signs its JWT while its row waits and is written (its status index is
/// reserved ahead, `status_indices`), so the writer's wait for the commit hides behind the
/// signature; a second writer halves the groups and costs PostgreSQL more CPU per token than
/// its shorter waits gain (bench/RESULTS.md, "Fourth pass at issuance").
const WRITERS: usize = 1;
/// The most creations one statement writes.
pub const MAX_GROUP: usize = 64;
/// Creations that may wait for a writer before senders wait for room (backpressure).
const QUEUE: usize = 1024;

struct Pending {
    record: TokenRecord,
    actor: Actor,
    policy_version: Option<i64>,
    reply: oneshot::Sender<Result<Option<TokenRecord>>>,
    /// Counted in [`StoreMetrics::queued`] until the writer takes it into a group.
    queued: Option<Queued>,
}

/// One creation in the `queued` gauge, from before it is queued until the writer takes it (or
/// it is dropped unqueued: the request went away while the queue was full).
struct Queued(Gauge);

impl Queued {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The queue in front of the writers. Writers stop when the last clone of it is dropped.
#[derive(Debug, Clone)]
pub struct Creates {
    queue: mpsc::Sender<Pending>,
    queued: Gauge,
}

impl Creates {
    /// Starts the writers on the current runtime.
    pub fn start(pool: PgPool, pooler: Pooler, metrics: StoreMetrics) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        let queued = metrics.queued.clone();
        for _ in 0..WRITERS {
            tokio::spawn(writer(
                pool.clone(),
                pooler,
                metrics.clone(),
                Arc::clone(&waiting),
            ));
        }
        Self { queue, queued }
    }

    /// Writes a new token's record and its `created` audit event; answers once they are
    /// committed. `None`, written nothing, when the organization's policy is no longer at
    /// `policy_version` ([`Queries::insert_token`]).
    pub async fn insert(
        &self,
        record: TokenRecord,
        actor: Actor,
        policy_version: Option<i64>,
    ) -> Result<Option<TokenRecord>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            record,
            actor,
            policy_version,
            reply,
            queued: Some(Queued::new(&self.queued)),
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

async fn writer(
    pool: PgPool,
    pooler: Pooler,
    metrics: StoreMetrics,
    waiting: Arc<Mutex<mpsc::Receiver<Pending>>>,
) {
    // Kept from one group to the next while creations keep coming (the module's documentation);
    // given back once nothing waits, or after a failed statement.
    let mut held: Option<PoolConnection<Postgres>> = None;
    loop {
        let mut group = {
            let mut waiting = waiting.lock().await;
            let first = match waiting.try_recv() {
                Ok(pending) => pending,
                Err(_) => {
                    held = None;
                    let Some(pending) = waiting.recv().await else {
                        return;
                    };
                    pending
                }
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match waiting.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) => break,
                }
            }
            group
        };
        for pending in &mut group {
            pending.queued = None;
        }
        metrics.group_sizes.observe(group.len() as f64);
        held = write(&pool, pooler, &metrics, group, held.take()).await;
    }
}

/// Writes `group` on `held`, or on a connection from the pool; returns the connection while it
/// can write the next group.
async fn write(
    pool: &PgPool,
    pooler: Pooler,
    metrics: &StoreMetrics,
    group: Vec<Pending>,
    mut held: Option<PoolConnection<Postgres>>,
) -> Option<PoolConnection<Postgres>> {
    loop {
        let was_held = held.is_some();
        let mut conn = match held.take() {
            Some(conn) => conn,
            None => match timed_acquire(pool, metrics).await {
                Ok(conn) => conn,
                Err(error) => {
                    failed(pool, pooler, metrics, group, error);
                    return None;
                }
            },
        };
        let written = {
            let items: Vec<(&TokenRecord, &Actor, Option<i64>)> = group
                .iter()
                .map(|p| (&p.record, &p.actor, p.policy_version))
                .collect();
            Pg::new(&mut conn, pooler, false)
                .on_one_server(async |pg| postgres::insert_token_group(pg, &items).await)
                .await
        };
        // The connection goes back to the pool on a failure, which tests it before it is used
        // again.
        match written {
            Ok(records) => {
                let mut by_id: HashMap<String, TokenRecord> =
                    records.into_iter().map(|r| (r.id.clone(), r)).collect();
                // A row the statement did not write was checked against a policy that has
                // changed since: its creation checks the policy of now and comes back.
                for pending in group {
                    let _ = pending.reply.send(Ok(by_id.remove(&pending.record.id)));
                }
                return Some(conn);
            }
            // The held connection was closed while it waited (the server restarted, an operator
            // ended the session): the group is written on one from the pool, as if it had not
            // been held.
            Err(error) if was_held && connection_closed(&error) => drop(conn),
            Err(error) => {
                drop(conn);
                failed(pool, pooler, metrics, group, error);
                return None;
            }
        }
    }
}

/// Answers a group whose statement, or whose connection, failed with `error`: a creation alone
/// gets the error; a group is written again one by one, so that a failure is only its own
/// request's.
fn failed(
    pool: &PgPool,
    pooler: Pooler,
    metrics: &StoreMetrics,
    mut group: Vec<Pending>,
    error: sqlx::Error,
) {
    match error {
        _ if group.len() == 1 => {
            if let Some(pending) = group.pop() {
                let _ = pending.reply.send(Err(error));
            }
        }
        // No connection to be had: one-by-one would only wait again, once per row.
        sqlx::Error::PoolTimedOut => answer_all(group, || sqlx::Error::PoolTimedOut),
        sqlx::Error::PoolClosed => answer_all(group, || sqlx::Error::PoolClosed),
        error => {
            tracing::debug!(%error, rows = group.len(), "a group of creations failed; writing them one by one");
            for pending in group {
                tokio::spawn(write_one(pool.clone(), pooler, metrics.clone(), pending));
            }
        }
    }
}

async fn write_one(pool: PgPool, pooler: Pooler, metrics: StoreMetrics, pending: Pending) {
    let written = async {
        let mut conn = timed_acquire(&pool, &metrics).await?;
        Db::Postgres(Pg::new(&mut conn, pooler, false))
            .insert_token(&pending.record, &pending.actor, pending.policy_version)
            .await
    }
    .await;
    let _ = pending.reply.send(written);
}

fn answer_all(group: Vec<Pending>, error: impl Fn() -> sqlx::Error) {
    for pending in group {
        let _ = pending.reply.send(Err(error()));
    }
}
