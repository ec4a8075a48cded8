//! The embedded store: one SQLite file, for a first run and development, and for one process.
//!
//! Times are stored as microseconds since the Unix epoch (they compare as numbers, as PostgreSQL's
//! `timestamptz` does), role ids as a JSON array. Write transactions take SQLite's write lock at
//! their start (`Store::begin`), which also serializes key operations: `lock_key_sets` has
//! nothing left to do. The journal is a write-ahead log with `synchronous = FULL`: a token is
//! answered only after its record is durable.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};

use super::{
    Action, AuditEvent, KeyRow, ListQuery, Lock, OpenError, Purpose, Queries, Result, key_columns,
    portable_queries,
};
use crate::keys::lifecycle::KeyInfo;
use crate::tokens::{Caller, TokenRecord, TokenStatus, TypeFields};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another (an operator command, say) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating when missing) the database file and its folder. Failures name the file and
/// the fix; an existing file is never replaced.
pub async fn open(path: &Path, purpose: Purpose) -> std::result::Result<SqlitePool, OpenError> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_folder(folder).map_err(|e| {
            OpenError::Sqlite(format!(
                "cannot create the folder {} for the embedded database: {e}; make it writable, \
                 or set DATABASE_URL=sqlite://<path> to keep the database elsewhere",
                folder.display()
            ))
        })?;
    }
    restrict_database_files(path);
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let (connections, acquire) = match purpose {
        Purpose::Service => (4, super::ACQUIRE_TIMEOUT),
        Purpose::Command => (1, super::COMMAND_ACQUIRE_TIMEOUT),
    };
    SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(acquire)
        .connect_with(options)
        .await
        .map_err(|e| OpenError::Sqlite(describe_open_error(path, &e)))
}

/// Creates a missing folder, and its missing parents, readable by the service's user alone
/// (0700); an existing folder is left as it is.
pub fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// The database holds every token record and the sealed keys: a new one is created 0600 (SQLite
/// would make it 0644, less the umask), and an existing one, with its `-wal` and `-shm` files,
/// loses any group and other access. SQLite gives the `-wal` and `-shm` files it creates the
/// database file's mode. Best effort: whatever fails here, SQLite's open reports with its one
/// line.
fn restrict_database_files(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let Ok(metadata) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = metadata.permissions().mode();
            if metadata.is_file() && mode & 0o077 != 0 {
                let _ =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One line that says what is wrong with the file and what to do.
fn describe_open_error(path: &Path, error: &sqlx::Error) -> String {
    let path = path.display();
    let code = match error {
        sqlx::Error::Database(e) => e.code().and_then(|c| c.parse::<i32>().ok()),
        _ => None,
    };
    // SQLite's primary result codes: 11 CORRUPT, 26 NOTADB; 3 PERM, 8 READONLY, 14 CANTOPEN.
    match code.map(|c| c & 0xff) {
        Some(11 | 26) => format!(
            "the embedded database {path} is not a readable SQLite database ({error}); \
             restore it from a backup, or move it away to start with an empty store"
        ),
        Some(3 | 8 | 14) => format!(
            "cannot open the embedded database {path} ({error}); make the file and its folder \
             writable, or set DATABASE_URL=sqlite://<path> to keep it elsewhere"
        ),
        _ => format!("cannot open the embedded database {path}: {error}"),
    }
}

/// The columns of a token record, in `Row` order.
macro_rules! columns {
    () => {
        "id, org_id, created_by, token_type, name, assignments, read_only, anonymize, \
         journey_id, portal_id, portal_user_id, key_id, created_at, expires_at, revoked_at, \
         last_used, rotated_from"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    org_id: String,
    created_by: String,
    token_type: String,
    name: String,
    assignments: String,
    read_only: bool,
    anonymize: bool,
    journey_id: Option<String>,
    portal_id: Option<String>,
    portal_user_id: Option<String>,
    key_id: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used: Option<NaiveDate>,
    rotated_from: Option<String>,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| sqlx::Error::Decode(format!("time {micros} is out of range").into()))
}

fn optional_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    micros.map(time).transpose()
}

fn json_array(items: &[impl AsRef<str>]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::Value::from(items).to_string()
}

impl TryFrom<Row> for TokenRecord {
    type Error = sqlx::Error;
    fn try_from(row: Row) -> Result<Self> {
        Ok(TokenRecord {
            token_type: super::postgres::token_type(&row.token_type)?,
            assignments: serde_json::from_str(&row.assignments)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            created_at: time(row.created_at)?,
            expires_at: optional_time(row.expires_at)?,
            revoked_at: optional_time(row.revoked_at)?,
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
            name: row.name,
            read_only: row.read_only,
            anonymize: row.anonymize,
            fields: TypeFields {
                journey_id: row.journey_id,
                portal_id: row.portal_id,
                portal_user_id: row.portal_user_id,
                ..TypeFields::default()
            },
            key_id: row.key_id,
            last_used: row.last_used,
            rotated_from: row.rotated_from,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    org_id: String,
    occurred_at: i64,
    action: String,
    token_id: String,
    related_token_id: Option<String>,
    actor_org_id: String,
    actor_user_id: String,
    actor_token_id: Option<String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
}

impl TryFrom<EventRow> for AuditEvent {
    type Error = sqlx::Error;
    fn try_from(r: EventRow) -> Result<Self> {
        Ok(AuditEvent {
            occurred_at: time(r.occurred_at)?,
            id: r.id,
            org_id: r.org_id,
            action: r.action,
            token_id: r.token_id,
            related_token_id: r.related_token_id,
            actor_org_id: r.actor_org_id,
            actor_user_id: r.actor_user_id,
            actor_token_id: r.actor_token_id,
            source_ip: r.source_ip,
            user_agent: r.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyInfoRow {
    key_set: String,
    kid: String,
    state: String,
    created_at: i64,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
    revoked_at: Option<i64>,
    tokens_signed: i64,
}

impl TryFrom<KeyInfoRow> for KeyInfo {
    type Error = sqlx::Error;
    fn try_from(r: KeyInfoRow) -> Result<Self> {
        Ok(KeyInfo {
            created_at: time(r.created_at)?,
            activated_at: optional_time(r.activated_at)?,
            retired_at: optional_time(r.retired_at)?,
            revoked_at: optional_time(r.revoked_at)?,
            key_set: r.key_set,
            kid: r.kid,
            state: r.state,
            tokens_signed: r.tokens_signed,
        })
    }
}

/// One SQL text per status, as for PostgreSQL. Parameters: org_id, types (a JSON array), name
/// pattern, after (created_at, id), limit, now.
macro_rules! list_sql {
    ($status:literal) => {
        concat!(
            "select ",
            columns!(),
            " from access_tokens
             where org_id = $1 and ",
            $status,
            " and ($2 is null or token_type in (select value from json_each($2)))
               and ($3 is null or name like $3 escape '\\')
               and (created_at, id) < ($4, $5)
             order by created_at desc, id desc
             limit $6"
        )
    };
}

fn list_sql(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => list_sql!("revoked_at is null"),
        TokenStatus::Revoked => list_sql!("revoked_at is not null"),
        TokenStatus::Expired => list_sql!("revoked_at is null and expires_at <= $7"),
        TokenStatus::All => list_sql!("1"),
    }
}

impl Queries for SqliteConnection {
    portable_queries!();

    async fn insert_created(&mut self, t: &TokenRecord, actor: &Caller) -> Result<TokenRecord> {
        // A savepoint when the caller holds a transaction already (rotation).
        let mut tx = self.begin().await?;
        let row: Row = sqlx::query_as(concat!(
            "insert into access_tokens (id, org_id, created_by, token_type, name, assignments,
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id, created_at,
                 expires_at, rotated_from)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             returning ",
            columns!()
        ))
        .bind(&t.id)
        .bind(&t.org_id)
        .bind(&t.created_by)
        .bind(t.token_type.as_str())
        .bind(&t.name)
        .bind(json_array(&t.assignments))
        .bind(t.read_only)
        .bind(t.anonymize)
        .bind(&t.fields.journey_id)
        .bind(&t.fields.portal_id)
        .bind(&t.fields.portal_user_id)
        .bind(&t.key_id)
        .bind(micros(t.created_at))
        .bind(t.expires_at.map(micros))
        .bind(&t.rotated_from)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "insert into audit_events (org_id, occurred_at, action, token_id, related_token_id,
                 actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent)
             values ($1, $2, 'created', $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.org_id)
        .bind(micros(Utc::now()))
        .bind(&t.id)
        .bind(&t.rotated_from)
        .bind(&actor.org_id)
        .bind(&actor.user_id)
        .bind(&actor.token_id)
        .bind(&actor.source_ip)
        .bind(&actor.user_agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// The write lock taken by `Store::begin` already keeps other writers out: `lock` is moot.
    async fn get_token(
        &mut self,
        org_id: &str,
        id: &str,
        _lock: Lock,
    ) -> Result<Option<TokenRecord>> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            columns!(),
            " from access_tokens where org_id = $1 and id = $2"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(self)
        .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
        let (after_time, after_id) = q.position();
        let rows: Vec<Row> = sqlx::query_as(list_sql(q.status))
            .bind(q.org_id)
            .bind(q.types.map(json_array))
            .bind(q.name_pattern())
            .bind(micros(after_time))
            .bind(after_id)
            .bind(q.limit)
            .bind(micros(Utc::now()))
            .fetch_all(self)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_token(
        &mut self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<(TokenRecord, bool)>> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "update access_tokens set revoked_at = $3
             where org_id = $1 and id = $2 and revoked_at is null
             returning ",
            columns!()
        ))
        .bind(org_id)
        .bind(id)
        .bind(micros(Utc::now()))
        .fetch_optional(&mut *self)
        .await?;
        match row {
            Some(row) => Ok(Some((row.try_into()?, true))),
            None => Ok(self
                .get_token(org_id, id, Lock::None)
                .await?
                .map(|r| (r, false))),
        }
    }

    async fn revoked_unexpired(&mut self) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "select id from access_tokens
             where revoked_at is not null and (expires_at is null or expires_at > $1)",
        )
        .bind(micros(Utc::now()))
        .fetch_all(self)
        .await
    }

    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()> {
        sqlx::query(
            "update access_tokens set last_used = $2
             where id in (select value from json_each($1))
               and (last_used is null or last_used < $2)",
        )
        .bind(json_array(ids))
        .bind(day)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn record_event(
        &mut self,
        org_id: &str,
        action: Action,
        token_id: &str,
        related_token_id: Option<&str>,
        actor: &Caller,
    ) -> Result<()> {
        sqlx::query(
            "insert into audit_events (org_id, occurred_at, action, token_id, related_token_id,
                 actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(org_id)
        .bind(micros(Utc::now()))
        .bind(action.as_str())
        .bind(token_id)
        .bind(related_token_id)
        .bind(&actor.org_id)
        .bind(&actor.user_id)
        .bind(&actor.token_id)
        .bind(&actor.source_ip)
        .bind(&actor.user_agent)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn list_events(
        &mut self,
        org_id: &str,
        token_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "select id, org_id, occurred_at, action, token_id, related_token_id, actor_org_id,
                    actor_user_id, actor_token_id, source_ip, user_agent
             from audit_events
             where org_id = $1 and ($2 is null or token_id = $2) and id < $3
             order by id desc
             limit $4",
        )
        .bind(org_id)
        .bind(token_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn lock_key_sets(&mut self) -> Result<()> {
        Ok(())
    }

    async fn insert_key(&mut self, row: &KeyRow) -> Result<()> {
        sqlx::query(
            "insert into signing_keys (kid, key_set, state, n, e, private_key_sealed, nonce,
                 created_at, activated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, case when $3 = 'active' then $8 end)",
        )
        .bind(&row.kid)
        .bind(&row.key_set)
        .bind(&row.state)
        .bind(&row.n)
        .bind(&row.e)
        .bind(&row.private_key_sealed)
        .bind(&row.nonce)
        .bind(micros(Utc::now()))
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn set_key_state(&mut self, kid: &str, state: &str) -> Result<()> {
        sqlx::query(
            "update signing_keys set state = $2,
                 activated_at = case when $2 = 'active' then $3 else activated_at end,
                 retired_at = case when $2 = 'retired' then $3 else retired_at end,
                 revoked_at = case when $2 = 'revoked' then $3 else revoked_at end
             where kid = $1",
        )
        .bind(kid)
        .bind(state)
        .bind(micros(Utc::now()))
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>> {
        let rows: Vec<KeyInfoRow> = sqlx::query_as(
            "select k.key_set, k.kid, k.state, k.created_at, k.activated_at, k.retired_at,
                    k.revoked_at,
                    (select count(*) from access_tokens t where t.key_id = k.kid) as tokens_signed
             from signing_keys k
             order by k.key_set, k.created_at, k.kid",
        )
        .fetch_all(self)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
