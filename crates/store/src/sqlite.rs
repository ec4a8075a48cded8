//! The embedded store: one SQLite file, for a first run and development, and for one process.
//!
//! Times are stored as microseconds since the Unix epoch (they compare as numbers, as PostgreSQL's
//! `timestamptz` does), role ids as a JSON array. Write transactions take SQLite's write lock at
//! their start (`Store::begin`), which also serializes key operations: `lock_key_sets` has
//! nothing left to do. The journal is a write-ahead log with `synchronous = FULL`: a token is
//! answered only after its record is durable.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};

use super::pool::{ACQUIRE_TIMEOUT, COMMAND_ACQUIRE_TIMEOUT, OpenError, Purpose};
use super::queries::{
    Action, AuditEvent, EventQuery, KeyInfo, KeyRow, ListQuery, Lock, NO_POLICY_VERSION, Queries,
    Result, StatusEntry, StatusIndexKey, StoredPolicy, TokenRow, TokenStatusEntry, columns,
    key_columns, list_page_sql, list_sql_fn, owned_page_sql, portable_queries,
};
use super::statements::Statements;
use super::types::{Named, TextList, Timestamp};
use crate::tokens::status_list::StatusRef;
use crate::tokens::{Actor, KeySetName, KeyState, Owned, Refused, TokenRecord, TokenStatus};

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
        Purpose::Service => (4, ACQUIRE_TIMEOUT),
        Purpose::Command => (1, COMMAND_ACQUIRE_TIMEOUT),
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
        sqlx::Error::Database(e) => primary_code(e.as_ref()),
        _ => None,
    };
    // SQLite's primary result codes: 11 CORRUPT, 26 NOTADB; 3 PERM, 8 READONLY, 14 CANTOPEN.
    match code {
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

/// SQLite's primary result code of a database error (the low byte of its extended code).
pub(super) fn primary_code(error: &dyn DatabaseError) -> Option<i32> {
    error
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff)
}

list_sql_fn!(
    /// The SQL of one list page for `status`. Parameters: org_id, types (a JSON array), name
    /// pattern, after (created_at, id), limit, now.
    fn list_sql,
    types: "($2 is null or token_type in (select value from json_each($2)))",
    name: "($3 is null or name like $3 escape '\\')"
);

impl Queries for SqliteConnection {
    portable_queries!(
        for_update: "",
        id_in_list: "id in (select value from json_each($1))",
        skip_locked: ""
    );

    async fn record_events(
        &mut self,
        action: Action,
        tokens: &[TokenRecord],
        related_token_id: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        for t in tokens {
            self.record_event(action, t, related_token_id, actor)
                .await?;
        }
        Ok(())
    }

    async fn insert_token(
        &mut self,
        t: &TokenRecord,
        actor: &Actor,
        policy_version: Option<i64>,
    ) -> Result<Option<TokenRecord>> {
        // A savepoint when the caller holds a transaction already (rotation).
        let mut tx = self.begin().await?;
        if let Some(checked) = policy_version {
            // In the write transaction, so no change of the policy can come between.
            let stored: i64 = sqlx::query_scalar(
                "select coalesce((select version from org_policies where org_id = $1), $2)",
            )
            .bind(&t.org_id)
            .bind(NO_POLICY_VERSION)
            .fetch_one(&mut *tx)
            .await?;
            if stored != checked {
                return Ok(None);
            }
        }
        // The key set's next status list index, from its counter row in this write transaction.
        let key_set = t.token_type.key_set().as_str();
        let status_index: Option<i64> = sqlx::query_scalar(
            "update status_list_counters set next_index = next_index + 1 where key_set = $1
             returning next_index - 1",
        )
        .bind(key_set)
        .fetch_optional(&mut *tx)
        .await?;
        let status = status_index
            .and_then(|n| u64::try_from(n).ok())
            .and_then(StatusRef::from_sequence);
        let row: TokenRow = sqlx::query_as(concat!(
            "insert into access_tokens (id, org_id, created_by, token_type, name, assignments,
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id, created_at,
                 expires_at, rotated_from, parent_id, status_key_set, status_list, status_idx,
                 owner, notice_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20, $21)
             returning ",
            columns!()
        ))
        .bind(&t.id)
        .bind(&t.org_id)
        .bind(&t.created_by)
        .bind(Named(t.token_type))
        .bind(&t.name)
        .bind(TextList::of(&t.assignments))
        .bind(t.read_only)
        .bind(t.anonymize)
        .bind(&t.fields.journey_id)
        .bind(&t.fields.portal_id)
        .bind(&t.fields.portal_user_id)
        .bind(&t.key_id)
        .bind(Timestamp(t.created_at))
        .bind(t.expires_at.map(Timestamp))
        .bind(&t.rotated_from)
        .bind(&t.parent_id)
        .bind(status.map(|_| key_set))
        .bind(status.map(|s| s.list))
        .bind(status.map(|s| s.idx))
        .bind(&t.owner)
        .bind(t.notice_at.map(Timestamp))
        .fetch_one(&mut *tx)
        .await?;
        let row = TokenRecord::from(row);
        // As on PostgreSQL, the record and its event in one transaction.
        tx.record_event(Action::Created, &row, row.rotated_from.as_deref(), actor)
            .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// The write lock taken by `Store::begin` already keeps other writers out.
    async fn lock_key_sets(&mut self) -> Result<()> {
        Ok(())
    }
}
