//! The dead-letter queue: a `DeadLetterStore` trait and its SQL implementation on SQLite
//! or PostgreSQL (chosen by URL scheme), plus the retry and replay operations.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use crate::metrics as m;
use crate::{FailureReason, OutgoingRecord, Producer};

/// Lifecycle of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlqStatus {
    /// Waiting for the background worker's next attempt.
    QueuedForRetry,
    /// Not retried automatically: waits for replay or discard.
    PermanentFailure,
    /// Delivered by a background retry.
    RetrySuccess,
    /// Delivered by an operator's replay.
    Replayed,
    /// Dropped by an operator.
    Discarded,
}

impl DlqStatus {
    /// Every status.
    pub const ALL: [DlqStatus; 5] = [
        DlqStatus::QueuedForRetry,
        DlqStatus::PermanentFailure,
        DlqStatus::RetrySuccess,
        DlqStatus::Replayed,
        DlqStatus::Discarded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqStatus::QueuedForRetry => "queued_for_retry",
            DlqStatus::PermanentFailure => "permanent_failure",
            DlqStatus::RetrySuccess => "retry_success",
            DlqStatus::Replayed => "replayed",
            DlqStatus::Discarded => "discarded",
        }
    }

    /// Still waiting to be delivered (counts toward the DLQ's size).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            DlqStatus::QueuedForRetry | DlqStatus::PermanentFailure
        )
    }
}

impl fmt::Display for DlqStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DlqStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        DlqStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = DlqStatus::ALL.iter().map(|v| v.as_str()).collect();
                format!("unknown status `{s}`; expected one of {}", names.join(", "))
            })
    }
}

/// A record to dead-letter.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// The record.
    pub record: OutgoingRecord,
    /// Why it failed.
    pub reason: FailureReason,
    /// Detail (error code and message), never a secret.
    pub details: String,
}

/// A row of `failed_messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// The record's stable id.
    pub message_id: String,
    /// Its source.
    pub source_id: String,
    /// The topic it was meant for.
    pub source_topic: String,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload bytes.
    pub payload: Vec<u8>,
    /// The payload as JSON text, when it is JSON.
    pub payload_json: Option<String>,
    /// Its headers as a JSON array of `[name, value]`.
    pub headers: String,
    /// Why it failed (a [`FailureReason`] name).
    pub failure_reason: String,
    /// Error code and message.
    pub error_details: String,
    /// Background retries so far.
    pub retry_count: i32,
    /// Lifecycle status.
    pub status: DlqStatus,
    /// Next background retry, ms since the epoch.
    pub retry_at: Option<i64>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last changed, ms since the epoch.
    pub updated_at: i64,
}

impl DeadLetter {
    /// The record again, as it was first sent (same id, key, headers), to `topic`.
    pub fn to_record(&self, topic: Option<&str>) -> OutgoingRecord {
        let headers: Vec<(String, String)> =
            serde_json::from_str(&self.headers).unwrap_or_default();
        OutgoingRecord {
            id: self.message_id.clone(),
            source_id: self.source_id.as_str().into(),
            topic: topic.unwrap_or(&self.source_topic).into(),
            key: self.key.clone().map(Bytes::from),
            payload: Bytes::from(self.payload.clone()),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k, Bytes::from(v)))
                .collect(),
            critical: false,
            emitted_at: None,
        }
    }
}

/// Which dead letters to list, replay or count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqFilter {
    /// Only this status.
    pub status: Option<DlqStatus>,
    /// Only this failure reason.
    pub reason: Option<String>,
    /// Only this source.
    pub source_id: Option<String>,
}

/// Counts of the DLQ.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DlqStats {
    /// Rows in total.
    pub total: i64,
    /// Rows still to deliver (queued for retry or permanent failure).
    pub pending: i64,
    /// By failure reason.
    pub by_reason: Vec<(String, i64)>,
    /// By status.
    pub by_status: Vec<(String, i64)>,
    /// Creation time of the oldest pending row, ms since the epoch.
    pub oldest_pending_at: Option<i64>,
}

/// DLQ errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqError {
    /// The URL is not `sqlite://…` or `postgres://…`.
    #[error("unsupported DLQ URL scheme in `{0}`; use sqlite://path or postgres://user@host/db")]
    UnsupportedUrl(String),
    /// The database failed (the message never contains the URL's password).
    #[error("dlq database: {0}")]
    Database(String),
    /// The schema could not be created or upgraded.
    #[error("dlq migration: {0}")]
    Migration(String),
}

fn db_err(e: sqlx::Error) -> DlqError {
    DlqError::Database(e.to_string())
}

/// Storage of dead letters.
#[async_trait]
pub trait DeadLetterStore: Send + Sync + fmt::Debug {
    /// Stores records; a record already stored (same message id) has its row updated.
    /// Retriable reasons start `queued_for_retry` due after `first_retry`; others
    /// `permanent_failure`.
    async fn insert(
        &self,
        letters: &[NewDeadLetter],
        first_retry: Duration,
    ) -> Result<(), DlqError>;
    /// Rows due for a background retry at `now_ms`, oldest first.
    async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<DeadLetter>, DlqError>;
    /// After a failed retry: count it, and either schedule the next (`next_retry_at`)
    /// or make it permanent (`None`).
    async fn retry_failed(
        &self,
        id: i64,
        details: &str,
        next_retry_at: Option<i64>,
    ) -> Result<(), DlqError>;
    /// Sets the status of rows; returns how many changed.
    async fn set_status(&self, ids: &[i64], status: DlqStatus) -> Result<u64, DlqError>;
    /// One row.
    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, DlqError>;
    /// Rows matching `filter`, newest first.
    async fn list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>, DlqError>;
    /// Counts.
    async fn stats(&self) -> Result<DlqStats, DlqError>;
    /// Deletes a row; true if it existed.
    async fn delete(&self, id: i64) -> Result<bool, DlqError>;
    /// Checks the store answers.
    async fn ping(&self) -> Result<(), DlqError>;
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Dead letters in SQLite (`sqlite://path`, created if missing) or PostgreSQL
/// (`postgres://…`), with the schema migrated on connect. The same database keeps the
/// sources' committed cursors (`load_cursor`, `commit_cursor`).
#[derive(Debug, Clone)]
pub struct SqlDeadLetterStore {
    backend: Backend,
}

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> futures_core_box::BoxFuture<Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

mod futures_core_box {
    pub(crate) type BoxFuture<T> =
        std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "failed_messages",
        include_str!("../migrations/sqlite/0001_failed_messages.sql"),
    ),
    (
        2,
        "source_cursors",
        include_str!("../migrations/sqlite/0002_source_cursors.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "failed_messages",
        include_str!("../migrations/postgres/0001_failed_messages.sql"),
    ),
    (
        2,
        "source_cursors",
        include_str!("../migrations/postgres/0002_source_cursors.sql"),
    ),
];

/// Runs the same statement code against whichever pool the store has.
macro_rules! on_pool {
    ($self:expr, |$pool:ident| $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

const COLUMNS: &str =
    "id, message_id, source_id, source_topic, key, payload, payload_json, headers, \
     failure_reason, error_details, retry_count, status, retry_at, created_at, updated_at";

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Decodes `failed_messages` rows (the same code for both backends).
fn letters<R: Row>(rows: &[R]) -> Result<Vec<DeadLetter>, DlqError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    let decode = |row: &R| -> Result<DeadLetter, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(DeadLetter {
            id: row.try_get("id")?,
            message_id: row.try_get("message_id")?,
            source_id: row.try_get("source_id")?,
            source_topic: row.try_get("source_topic")?,
            key: row.try_get("key")?,
            payload: row.try_get("payload")?,
            payload_json: row.try_get("payload_json")?,
            headers: row.try_get("headers")?,
            failure_reason: row.try_get("failure_reason")?,
            error_details: row.try_get("error_details")?,
            retry_count: row.try_get("retry_count")?,
            status: status
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            retry_at: row.try_get("retry_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    };
    rows.iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)
}

/// Builds `WHERE …` for a filter with `$n` placeholders from `first`, and the values.
fn where_clause(filter: &DlqFilter, first: usize) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut n = first;
    for (column, value) in [
        ("status", filter.status.map(|s| s.as_str().to_owned())),
        ("failure_reason", filter.reason.clone()),
        ("source_id", filter.source_id.clone()),
    ] {
        if let Some(v) = value {
            clauses.push(format!("{column} = ${n}"));
            values.push(v);
            n += 1;
        }
    }
    if clauses.is_empty() {
        (String::new(), values)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), values)
    }
}

impl SqlDeadLetterStore {
    /// Connects (creating a SQLite file and its folder if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Self, DlqError> {
        let scheme = url.split("://").next().unwrap_or_default();
        let backend = match scheme {
            "sqlite" => {
                let path = url.trim_start_matches("sqlite://");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = std::path::Path::new(path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            DlqError::Database(format!("cannot create {}: {e}", dir.display()))
                        })?;
                    }
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(db_err)?;
                Backend::Sqlite(pool)
            }
            "postgres" | "postgresql" => {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await
                    .map_err(|e| {
                        DlqError::Database(
                            stream_config::redact_url(&e.to_string())
                                .unwrap_or_else(|| e.to_string()),
                        )
                    })?;
                Backend::Postgres(pool)
            }
            _ => {
                return Err(DlqError::UnsupportedUrl(
                    stream_config::redact_url(url).unwrap_or_else(|| url.to_owned()),
                ))
            }
        };
        let store = Self { backend };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), DlqError> {
        let source = match self.backend {
            Backend::Sqlite(_) => Embedded(SQLITE_MIGRATIONS),
            Backend::Postgres(_) => Embedded(POSTGRES_MIGRATIONS),
        };
        let migrator = Migrator::new(source)
            .await
            .map_err(|e| DlqError::Migration(e.to_string()))?;
        on_pool!(self, |pool| migrator.run(pool).await)
            .map_err(|e| DlqError::Migration(e.to_string()))
    }

    /// The committed cursor of a source (sources' cursors live beside the DLQ).
    pub async fn load_cursor(&self, source_id: &str) -> Result<Option<String>, DlqError> {
        on_pool!(self, |pool| {
            let row = sqlx::query("SELECT cursor FROM source_cursors WHERE source_id = $1")
                .bind(source_id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.map(|r| r.try_get::<String, _>(0))
                .transpose()
                .map_err(db_err)
        })
    }

    /// Commits a source's cursor.
    pub async fn commit_cursor(&self, source_id: &str, cursor: &str) -> Result<(), DlqError> {
        let sql = "INSERT INTO source_cursors (source_id, cursor, updated_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (source_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(source_id)
            .bind(cursor)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(db_err))
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

#[async_trait]
impl DeadLetterStore for SqlDeadLetterStore {
    async fn insert(
        &self,
        letters: &[NewDeadLetter],
        first_retry: Duration,
    ) -> Result<(), DlqError> {
        if letters.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let sql = "INSERT INTO failed_messages (message_id, source_id, source_topic, key, payload, payload_json, \
                   headers, failure_reason, error_details, retry_count, status, retry_at, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13) \
                   ON CONFLICT (message_id) DO UPDATE SET failure_reason = excluded.failure_reason, \
                   error_details = excluded.error_details, status = excluded.status, retry_at = excluded.retry_at, \
                   source_topic = excluded.source_topic, updated_at = excluded.updated_at";
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            for l in letters {
                let r = &l.record;
                let payload_json = serde_json::from_slice::<serde_json::Value>(&r.payload)
                    .ok()
                    .map(|_| String::from_utf8_lossy(&r.payload).into_owned());
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect();
                let (status, retry_at) = if l.reason.is_retriable() {
                    (
                        DlqStatus::QueuedForRetry,
                        Some(now + first_retry.as_millis() as i64),
                    )
                } else {
                    (DlqStatus::PermanentFailure, None)
                };
                sqlx::query(sql)
                    .bind(r.id.as_str())
                    .bind(r.source_id.as_ref())
                    .bind(r.topic.as_ref())
                    .bind(r.key.as_ref().map(|k| k.to_vec()))
                    .bind(r.payload.to_vec())
                    .bind(payload_json)
                    .bind(serde_json::to_string(&headers).unwrap_or_else(|_| "[]".to_owned()))
                    .bind(l.reason.as_str())
                    .bind(l.details.as_str())
                    .bind(status.as_str())
                    .bind(retry_at)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)
        })?;
        for l in letters {
            metrics::counter!(m::DLQ_WRITES, "reason" => l.reason.as_str()).increment(1);
        }
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<DeadLetter>, DlqError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM failed_messages WHERE status = $1 AND retry_at <= $2 ORDER BY retry_at LIMIT $3"
        );
        on_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(DlqStatus::QueuedForRetry.as_str())
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            letters(&rows)
        })
    }

    async fn retry_failed(
        &self,
        id: i64,
        details: &str,
        next_retry_at: Option<i64>,
    ) -> Result<(), DlqError> {
        let status = if next_retry_at.is_some() {
            DlqStatus::QueuedForRetry
        } else {
            DlqStatus::PermanentFailure
        };
        let sql = "UPDATE failed_messages SET retry_count = retry_count + 1, error_details = $1, status = $2, \
                   retry_at = $3, updated_at = $4 WHERE id = $5";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(details)
            .bind(status.as_str())
            .bind(next_retry_at)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(db_err))
    }

    async fn set_status(&self, ids: &[i64], status: DlqStatus) -> Result<u64, DlqError> {
        let mut changed = 0;
        let sql = "UPDATE failed_messages SET status = $1, retry_at = NULL, updated_at = $2 WHERE id = $3";
        for id in ids {
            changed += on_pool!(self, |pool| sqlx::query(sql)
                .bind(status.as_str())
                .bind(now_ms())
                .bind(*id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(db_err))?;
        }
        Ok(changed)
    }

    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, DlqError> {
        let sql = format!("SELECT {COLUMNS} FROM failed_messages WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            Ok(letters(row.as_slice())?.pop())
        })
    }

    async fn list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>, DlqError> {
        let (clause, values) = where_clause(filter, 1);
        let n = values.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM failed_messages {clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        on_pool!(self, |pool| {
            let mut q = sqlx::query(&sql);
            for v in &values {
                q = q.bind(v.as_str());
            }
            let rows = q
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            letters(&rows)
        })
    }

    async fn stats(&self) -> Result<DlqStats, DlqError> {
        let pending_sql =
            "SELECT COUNT(*), MIN(created_at) FROM failed_messages WHERE status IN ($1, $2)";
        let group = |col: &str| {
            format!("SELECT {col}, COUNT(*) FROM failed_messages GROUP BY {col} ORDER BY {col}")
        };
        let (by_reason_sql, by_status_sql) = (group("failure_reason"), group("status"));
        on_pool!(self, |pool| {
            let row = sqlx::query(pending_sql)
                .bind(DlqStatus::QueuedForRetry.as_str())
                .bind(DlqStatus::PermanentFailure.as_str())
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            let pending: i64 = row.try_get(0).map_err(db_err)?;
            let oldest_pending_at: Option<i64> = row.try_get(1).map_err(db_err)?;
            let mut out = DlqStats {
                pending,
                oldest_pending_at,
                ..DlqStats::default()
            };
            for (sql, target) in [
                (&by_reason_sql, &mut out.by_reason),
                (&by_status_sql, &mut out.by_status),
            ] {
                for row in sqlx::query(sql).fetch_all(pool).await.map_err(db_err)? {
                    target.push((
                        row.try_get(0).map_err(db_err)?,
                        row.try_get(1).map_err(db_err)?,
                    ));
                }
            }
            out.total = out.by_status.iter().map(|(_, n)| n).sum();
            metrics::gauge!(m::DLQ_SIZE).set(pending as f64);
            Ok(out)
        })
    }

    async fn delete(&self, id: i64) -> Result<bool, DlqError> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM failed_messages WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(db_err))
    }

    async fn ping(&self) -> Result<(), DlqError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(db_err))
    }
}

/// One pass of the background worker: retries due rows through `producer`. A success
/// marks the row `retry_success`; a failure counts the retry and schedules the next at
/// `base × 2^n`, or makes the row permanent after `max_retries`. Returns
/// (delivered, still failing).
pub async fn retry_due(
    store: &dyn DeadLetterStore,
    producer: &dyn Producer,
    now_ms: i64,
    base: Duration,
    max_retries: u32,
) -> Result<(usize, usize), DlqError> {
    let due = store.due(now_ms, 500).await?;
    if due.is_empty() {
        return Ok((0, 0));
    }
    let records: Vec<_> = due.iter().map(|d| d.to_record(None)).collect();
    let outcomes = producer.send(records).await;
    let (mut ok_ids, mut failed) = (Vec::new(), 0);
    for (letter, (_, outcome)) in due.iter().zip(outcomes) {
        metrics::counter!(m::DLQ_RETRIES).increment(1);
        match outcome {
            Ok(_) => ok_ids.push(letter.id),
            Err(e) => {
                failed += 1;
                let n = letter.retry_count as u32 + 1;
                let next = (n < max_retries && e.reason.is_retriable())
                    .then(|| now_ms + base.saturating_mul(1 << n.min(20)).as_millis() as i64);
                store.retry_failed(letter.id, &e.to_string(), next).await?;
            }
        }
    }
    store.set_status(&ok_ids, DlqStatus::RetrySuccess).await?;
    Ok((ok_ids.len(), failed))
}

/// Replays rows (to their original topic, or `topic`): delivered rows are marked
/// `replayed`; rows that fail again keep their status with the new error.
/// Returns (replayed, failed).
pub async fn replay(
    store: &dyn DeadLetterStore,
    producer: &dyn Producer,
    letters: &[DeadLetter],
    topic: Option<&str>,
) -> Result<(usize, usize), DlqError> {
    let records: Vec<_> = letters.iter().map(|d| d.to_record(topic)).collect();
    let outcomes = producer.send(records).await;
    let (mut ok_ids, mut failed) = (Vec::new(), 0);
    for (letter, (_, outcome)) in letters.iter().zip(outcomes) {
        match outcome {
            Ok(_) => ok_ids.push(letter.id),
            Err(e) => {
                failed += 1;
                let keep = letter
                    .retry_at
                    .filter(|_| letter.status == DlqStatus::QueuedForRetry);
                store
                    .retry_failed(letter.id, &format!("replay failed: {e}"), keep)
                    .await?;
            }
        }
    }
    store.set_status(&ok_ids, DlqStatus::Replayed).await?;
    metrics::counter!(m::DLQ_REPLAYS).increment(ok_ids.len() as u64);
    Ok((ok_ids.len(), failed))
}
