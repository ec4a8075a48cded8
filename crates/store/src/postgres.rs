//! The production store: PostgreSQL. Role arrays are `text[]`, times `timestamptz`; revocations
//! are announced to every replica by a trigger (LISTEN/NOTIFY, see [`super::listen`]); key
//! operations are serialized across replicas by an advisory lock, held until the transaction
//! ends (a session lock would outlive the transaction on a pooler's shared server connection).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::queries::{
    Action, AuditEvent, EventQuery, KeyInfo, KeyRow, ListQuery, Lock, NO_POLICY_VERSION, Queries,
    Result, StatusEntry, StatusIndexKey, StoredPolicy, TokenRow, TokenStatusEntry, columns,
    key_columns, list_page_sql, list_sql_fn, owned_page_sql, portable_queries, status_ref,
};
use super::statements::{Pg, Statements};
use super::types::{Named, TextList, Timestamp};
use crate::tokens::status_list::StatusRef;
use crate::tokens::{Actor, KeySetName, KeyState, Owned, Refused, TokenRecord, TokenStatus};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Advisory lock key that serializes key creation, rotation and revocation across replicas and
/// operators.
const KEY_SETS_LOCK: i64 = 0x6b65_7973_6574; // "keyset"

list_sql_fn!(
    /// The SQL of one list page for `status` (public so that a test can EXPLAIN it). Parameters:
    /// org_id, types, name pattern, after (created_at, id), limit, now for `expired`, creator,
    /// and when `owned`, the owner keys.
    pub fn list_sql,
    types: "($2::text[] is null or token_type = any($2))",
    name: "($3::text is null or name ilike $3 escape '\\')"
);

/// Inserts the records of one or more creations with their `created` audit events in one
/// statement: all of them or none (outside a transaction, one commit for all). Returns the records
/// as stored, in no particular order: the given ones with the status list index each was given and
/// their times at the microseconds PostgreSQL keeps (the statement returns only id and index, not
/// the row: a creation's answer needs nothing else from it, and decoding every column of every row
/// was a share of a creation's CPU on both sides). Role lists travel as JSON arrays (a `text[][]`
/// must be rectangular); an event's time is its token's creation time. A record that carries its
/// status list place (reserved ahead, [`crate::Store::reserve_status`]) is written at it; one that
/// does not takes the next index of its key set's sequence in the same statement
/// (`status_list_next_index`, once per row), so a group of any size allocates in its one round
/// trip.
pub(super) async fn insert_token_group(
    pg: &mut Pg<'_>,
    group: &[(&TokenRecord, &Actor, Option<i64>)],
) -> Result<Vec<TokenRecord>> {
    let column = |f: fn(&TokenRecord, &Actor) -> Option<String>| -> Vec<Option<String>> {
        group.iter().map(|(t, a, _)| f(t, a)).collect()
    };
    let assignments = group
        .iter()
        .map(|(t, _, _)| serde_json::to_string(&t.assignments))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    let rows: Vec<(String, Option<i32>, Option<i32>)> = sqlx::query_as(
        "with v as (
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::bool[], $8::bool[], $9::text[], $10::text[], $11::text[],
                 $12::text[], $13::timestamptz[], $14::timestamptz[], $15::text[], $16::text[],
                 $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[],
                 $23::text[], $24::text[], $25::bigint[], $27::timestamptz[], $28::bigint[])
                 as v(id, org_id, created_by, token_type, name, assignments, read_only, anonymize,
                     journey_id, portal_id, portal_user_id, key_id, created_at, expires_at,
                     rotated_from, actor_org_id, actor_user_id, actor_token_id, source_ip,
                     user_agent, parent_id, actor_home_org_id, status_key_set, owner,
                     policy_version, notice_at, status_reserved)
         ), t as (
             insert into access_tokens (id, org_id, created_by, owner, token_type, name,
                 assignments, read_only, anonymize, journey_id, portal_id, portal_user_id, key_id,
                 created_at, expires_at, rotated_from, parent_id, status_key_set, status_list,
                 status_idx, notice_at)
             select id, org_id, created_by, owner, token_type, name,
                 array(select json_array_elements_text(assignments::json)),
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id,
                 created_at, expires_at, rotated_from, parent_id, status_key_set,
                 (status_index / 1048576)::integer, (status_index % 1048576)::integer, notice_at
             from (select v.*,
                       coalesce(v.status_reserved, status_list_next_index(v.status_key_set))
                           as status_index
                   from v
                   -- Written only while the policy it was checked against is the stored one.
                   where v.policy_version is null
                      or v.policy_version = coalesce(
                          (select p.version from org_policies p where p.org_id = v.org_id),
                          $26)) as allocated
             returning id, status_list, status_idx
         ), e as (
             insert into audit_events (org_id, occurred_at, action, token_id, related_token_id,
                 actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent, token_type,
                 token_owner, actor_home_org_id)
             select org_id, created_at, 'created', id, rotated_from, actor_org_id, actor_user_id,
                 actor_token_id, source_ip, user_agent, token_type, owner, actor_home_org_id
             from v
             where v.id in (select id from t)
         )
         select id, status_list, status_idx from t",
    )
    .bind(column(|t, _| Some(t.id.clone())))
    .bind(column(|t, _| Some(t.org_id.clone())))
    .bind(column(|t, _| Some(t.created_by.clone())))
    .bind(column(|t, _| Some(t.token_type.as_str().to_owned())))
    .bind(column(|t, _| Some(t.name.clone())))
    .bind(assignments)
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.read_only)
            .collect::<Vec<_>>(),
    )
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.anonymize)
            .collect::<Vec<_>>(),
    )
    .bind(column(|t, _| t.fields.journey_id.clone()))
    .bind(column(|t, _| t.fields.portal_id.clone()))
    .bind(column(|t, _| t.fields.portal_user_id.clone()))
    .bind(column(|t, _| Some(t.key_id.clone())))
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.created_at)
            .collect::<Vec<_>>(),
    )
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.expires_at)
            .collect::<Vec<_>>(),
    )
    .bind(column(|t, _| t.rotated_from.clone()))
    .bind(column(|_, a| Some(a.org_id.clone())))
    .bind(column(|_, a| Some(a.user_id.clone())))
    .bind(column(|_, a| a.token_id.clone()))
    .bind(column(|_, a| a.source_ip.clone()))
    .bind(column(|_, a| a.user_agent.clone()))
    .bind(column(|t, _| t.parent_id.clone()))
    .bind(column(|_, a| a.home_org_id.clone()))
    .bind(column(|t, _| {
        t.token_type
            .is_stored()
            .then(|| t.token_type.key_set().as_str().to_owned())
    }))
    .bind(column(|t, _| Some(t.owner.clone())))
    .bind(group.iter().map(|(_, _, v)| *v).collect::<Vec<_>>())
    .bind(NO_POLICY_VERSION)
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.notice_at)
            .collect::<Vec<_>>(),
    )
    .bind(
        group
            .iter()
            .map(|(t, _, _)| t.status.and_then(|s| i64::try_from(s.sequence()).ok()))
            .collect::<Vec<_>>(),
    )
    .persistent(pg.named())
    .fetch_all(pg.conn())
    .await?;
    let mut written: HashMap<String, Option<StatusRef>> = rows
        .into_iter()
        .map(|(id, list, idx)| (id, status_ref(list, idx)))
        .collect();
    Ok(group
        .iter()
        .filter_map(|(t, _, _)| {
            let status = written.remove(&t.id)?;
            Some(TokenRecord {
                status,
                created_at: as_stored(t.created_at),
                expires_at: t.expires_at.map(as_stored),
                notice_at: t.notice_at.map(as_stored),
                ..(*t).clone()
            })
        })
        .collect())
}

/// A time as a `timestamptz` keeps it: to the microsecond (what a read of the row returns).
fn as_stored(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

impl Queries for Pg<'_> {
    portable_queries!(
        for_update: " for update",
        id_in_list: "id = any($1)",
        skip_locked: " for update skip locked"
    );

    async fn record_events(
        &mut self,
        action: Action,
        tokens: &[TokenRecord],
        related_token_id: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&TokenRecord) -> Option<String>| -> Vec<Option<String>> {
            tokens.iter().map(f).collect()
        };
        sqlx::query(
            "insert into audit_events (org_id, occurred_at, action, token_id, related_token_id,
                 token_type, contact_id, surface_id, actor_org_id, actor_user_id, actor_token_id,
                 source_ip, user_agent, token_owner, actor_home_org_id)
             select t.org_id, $6, $7, t.id, $8, t.token_type, t.contact_id, t.surface_id, $9,
                 $10, $11, $12, $13, t.owner, $14
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $15::text[])
                 as t(org_id, id, token_type, owner, contact_id, surface_id)",
        )
        .bind(column(|t| Some(t.org_id.clone())))
        .bind(column(|t| Some(t.id.clone())))
        .bind(column(|t| Some(t.token_type.as_str().to_owned())))
        .bind(column(|t| Some(t.owner.clone())))
        .bind(column(|t| t.fields.contact_id.clone()))
        .bind(Timestamp::now())
        .bind(action.as_str())
        .bind(related_token_id)
        .bind(&actor.org_id)
        .bind(&actor.user_id)
        .bind(&actor.token_id)
        .bind(&actor.source_ip)
        .bind(&actor.user_agent)
        .bind(&actor.home_org_id)
        .bind(column(|t| t.fields.surface_id.clone()))
        .persistent(self.named())
        .execute(self.conn())
        .await
        .map(|_| ())
    }

    async fn insert_token(
        &mut self,
        t: &TokenRecord,
        actor: &Actor,
        policy_version: Option<i64>,
    ) -> Result<Option<TokenRecord>> {
        // The group statement with one row: the record and its audit event, atomic, one round trip.
        Ok(insert_token_group(self, &[(t, actor, policy_version)])
            .await?
            .pop())
    }

    async fn lock_key_sets(&mut self) -> Result<()> {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(KEY_SETS_LOCK)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
    }
}
