//! Token creations on PostgreSQL, written in groups (group commit by concurrency).
//!
//! Each creation is queued; a writer takes everything that is waiting (up to [`MAX_GROUP`]) and
//! writes it, records and audit events, in one statement: one transaction and one commit instead
//! of one per token. Nothing waits for a group to fill: a creation that finds a writer idle is
//! written at once, alone; groups form only while the writer is busy,
//! that is under load, where they cut PostgreSQL's CPU per token to about a quarter.
//!
//! Durability is that of a single insert: a caller is answered only after the statement holding its
//! row has committed. A statement is atomic, so a group that fails has written nothing; its rows are
//! then written one by one, each in its own statement, so that a failure is only its own request's.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

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
}

/// The queue in front of the writers. Writers stop when the last clone of it is dropped.
#[derive(Debug, Clone)]
pub struct Creates {
    queue: mpsc::Sender<Pending>,
}

impl Creates {
    /// Starts the writers on the current runtime.
    pub fn start(pool: PgPool, pooler: Pooler, metrics: StoreMetrics) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WRITERS {
            tokio::spawn(writer(
                pool.clone(),
                pooler,
                metrics.clone(),
                Arc::clone(&waiting),
            ));
        }
        Self { queue }
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
    loop {
        let group = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
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
        metrics.group_sizes.observe(group.len() as f64);
        write(&pool, pooler, &metrics, group).await;
    }
}

async fn write(pool: &PgPool, pooler: Pooler, metrics: &StoreMetrics, mut group: Vec<Pending>) {
    if group.len() == 1 {
        if let Some(pending) = group.pop() {
            write_one(pool.clone(), pooler, metrics.clone(), pending).await;
        }
        return;
    }
    let written = async {
        let items: Vec<(&TokenRecord, &Actor, Option<i64>)> = group
            .iter()
            .map(|p| (&p.record, &p.actor, p.policy_version))
            .collect();
        let mut conn = timed_acquire(pool, metrics).await?;
        Pg::new(&mut conn, pooler, false)
            .on_one_server(async |pg| postgres::insert_token_group(pg, &items).await)
            .await
    }
    .await;
    match written {
        Ok(records) => {
            let mut by_id: HashMap<String, TokenRecord> =
                records.into_iter().map(|r| (r.id.clone(), r)).collect();
            // A row the statement did not write was checked against a policy that has changed
            // since: its creation checks the policy of now and comes back.
            for pending in group {
                let _ = pending.reply.send(Ok(by_id.remove(&pending.record.id)));
            }
        }
        // No connection to be had: one-by-one would only wait again, once per row.
        Err(sqlx::Error::PoolTimedOut) => answer_all(group, || sqlx::Error::PoolTimedOut),
        Err(sqlx::Error::PoolClosed) => answer_all(group, || sqlx::Error::PoolClosed),
        Err(error) => {
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
