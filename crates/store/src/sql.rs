//! The SQL that backs the dead-letter queue and source cursors: one pool per URL
//! (`sqlite://` embedded, `postgres://`), one migration sequence per dialect.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use stream_contracts::{
    headers_json, initial_status, payload_json, DeadLetter, DeadLetterStore, DlqFilter, DlqStats,
    DlqStatus, NewDeadLetter, Purge,
};

use crate::{redact_url, Error, Result};

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The project's database: SQLite (`sqlite://path`, created if missing) or PostgreSQL
/// (`postgres://…`), migrated on connect. Implements [`DeadLetterStore`] (dead letters)
/// and [`CursorStore`](stream_contracts::CursorStore) (sources' committed cursors).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) backend: Backend,
    /// What this store last wrote of each source's fetch state (`cursors.rs`).
    pub(crate) chains: std::sync::Arc<stream_contracts::StateChains>,
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
    (
        3,
        "cluster",
        include_str!("../migrations/sqlite/0003_cluster.sql"),
    ),
    (
        4,
        "cursor_deltas",
        include_str!("../migrations/sqlite/0004_cursor_deltas.sql"),
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
    (
        3,
        "cluster",
        include_str!("../migrations/postgres/0003_cluster.sql"),
    ),
    (
        4,
        "cursor_deltas",
        include_str!("../migrations/postgres/0004_cursor_deltas.sql"),
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
pub(crate) use on_pool;

const COLUMNS: &str =
    "id, message_id, source_id, source_topic, key, payload, payload_json, headers, \
     failure_reason, error_details, retry_count, status, retry_at, created_at, updated_at";

/// Decodes `failed_messages` rows (the same code for both backends).
fn letters<R: Row>(rows: &[R]) -> Result<Vec<DeadLetter>>
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
        .map_err(Error::Query)
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

impl SqlStore {
    /// Connects (creating a SQLite file and its folder if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Self> {
        let backend = match crate::Database::of(url) {
            Some(crate::Database::Sqlite) => {
                let path = url.trim_start_matches("sqlite://");
                let path = path.split('?').next().unwrap_or(path);
                if let Some(dir) = std::path::Path::new(path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                            dir: dir.to_path_buf(),
                            source,
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
                    .map_err(|source| Error::Connect {
                        url: redact_url(url),
                        source,
                    })?;
                Backend::Sqlite(pool)
            }
            Some(crate::Database::Postgres) => {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await
                    .map_err(|source| Error::Connect {
                        url: redact_url(url),
                        source,
                    })?;
                Backend::Postgres(pool)
            }
            None => return Err(Error::UnsupportedUrl(redact_url(url))),
        };
        let store = Self {
            backend,
            chains: std::sync::Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let source = match self.backend {
            Backend::Sqlite(_) => Embedded(SQLITE_MIGRATIONS),
            Backend::Postgres(_) => Embedded(POSTGRES_MIGRATIONS),
        };
        let migrator = Migrator::new(source).await.map_err(Error::Migration)?;
        on_pool!(self, |pool| migrator.run(pool).await).map_err(Error::Migration)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The dead-letter statements (the trait impl below wraps their errors).
impl SqlStore {
    async fn sql_insert(&self, letters: &[NewDeadLetter], first_retry: Duration) -> Result<()> {
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
            let mut tx = pool.begin().await.map_err(Error::Query)?;
            for l in letters {
                let r = &l.record;
                let (status, retry_at) = initial_status(l.reason, now, first_retry);
                sqlx::query(sql)
                    .bind(&*r.id)
                    .bind(r.source_id.as_ref())
                    .bind(r.topic.as_ref())
                    .bind(r.key.as_ref().map(|k| k.to_vec()))
                    .bind(r.payload.to_vec())
                    .bind(payload_json(r))
                    .bind(headers_json(r))
                    .bind(l.reason.as_str())
                    .bind(l.details.as_str())
                    .bind(status.as_str())
                    .bind(retry_at)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::Query)?;
            }
            tx.commit().await.map_err(Error::Query)
        })?;
        Ok(())
    }

    async fn sql_due(&self, now_ms: i64, limit: i64) -> Result<Vec<DeadLetter>> {
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
                .map_err(Error::Query)?;
            letters(&rows)
        })
    }

    async fn sql_retry_failed(
        &self,
        id: i64,
        details: &str,
        next_retry_at: Option<i64>,
    ) -> Result<()> {
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
            .map_err(Error::Query))
    }

    async fn sql_set_status(&self, ids: &[i64], status: DlqStatus) -> Result<u64> {
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
                .map_err(Error::Query))?;
        }
        Ok(changed)
    }

    async fn sql_get(&self, id: i64) -> Result<Option<DeadLetter>> {
        let sql = format!("SELECT {COLUMNS} FROM failed_messages WHERE id = $1");
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(Error::Query)?;
            Ok(letters(row.as_slice())?.pop())
        })
    }

    async fn sql_list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>> {
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
                .map_err(Error::Query)?;
            letters(&rows)
        })
    }

    async fn sql_stats(&self) -> Result<DlqStats> {
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
                .map_err(Error::Query)?;
            let pending: i64 = row.try_get(0).map_err(Error::Query)?;
            let oldest_pending_at: Option<i64> = row.try_get(1).map_err(Error::Query)?;
            let mut out = DlqStats {
                pending,
                oldest_pending_at,
                ..DlqStats::default()
            };
            for (sql, target) in [
                (&by_reason_sql, &mut out.by_reason),
                (&by_status_sql, &mut out.by_status),
            ] {
                for row in sqlx::query(sql)
                    .fetch_all(pool)
                    .await
                    .map_err(Error::Query)?
                {
                    target.push((
                        row.try_get(0).map_err(Error::Query)?,
                        row.try_get(1).map_err(Error::Query)?,
                    ));
                }
            }
            out.total = out.by_status.iter().map(|(_, n)| n).sum();
            Ok(out)
        })
    }

    async fn sql_delete(&self, id: i64) -> Result<bool> {
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM failed_messages WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() > 0)
        .map_err(Error::Query))
    }

    async fn sql_purge(&self, purge: &Purge) -> Result<u64> {
        if purge.statuses.is_empty() {
            return Ok(0);
        }
        // `$1…$n` the statuses, then the limits: one statement for both dialects.
        let n = purge.statuses.len();
        let list = (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut conditions = Vec::new();
        let mut next = n + 1;
        if purge.older_than_ms.is_some() {
            conditions.push(format!("updated_at < ${next}"));
            next += 1;
        }
        if purge.keep_newest.is_some() {
            // Placeholders stay in ascending order of appearance (SQLite numbers them so).
            let list2 = (next..next + n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let limit = next + n;
            conditions.push(format!(
                "id NOT IN (SELECT id FROM failed_messages WHERE status IN ({list2}) ORDER BY id DESC LIMIT ${limit})"
            ));
        }
        if conditions.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM failed_messages WHERE status IN ({list}) AND ({})",
            conditions.join(" OR ")
        );
        on_pool!(self, |pool| {
            let mut q = sqlx::query(&sql);
            for s in &purge.statuses {
                q = q.bind(s.as_str());
            }
            if let Some(t) = purge.older_than_ms {
                q = q.bind(t);
            }
            if let Some(k) = purge.keep_newest {
                for s in &purge.statuses {
                    q = q.bind(s.as_str());
                }
                q = q.bind(i64::try_from(k).unwrap_or(i64::MAX));
            }
            q.execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(Error::Query)
        })
    }

    async fn sql_ping(&self) -> Result<()> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(Error::Query))
    }
}

#[async_trait]
impl DeadLetterStore for SqlStore {
    async fn insert(
        &self,
        letters: &[NewDeadLetter],
        first_retry: Duration,
    ) -> Result<(), stream_contracts::ProducerError> {
        Ok(self.sql_insert(letters, first_retry).await?)
    }
    async fn due(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, stream_contracts::ProducerError> {
        Ok(self.sql_due(now_ms, limit).await?)
    }
    async fn retry_failed(
        &self,
        id: i64,
        details: &str,
        next_retry_at: Option<i64>,
    ) -> Result<(), stream_contracts::ProducerError> {
        Ok(self.sql_retry_failed(id, details, next_retry_at).await?)
    }
    async fn set_status(
        &self,
        ids: &[i64],
        status: DlqStatus,
    ) -> Result<u64, stream_contracts::ProducerError> {
        Ok(self.sql_set_status(ids, status).await?)
    }
    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, stream_contracts::ProducerError> {
        Ok(self.sql_get(id).await?)
    }
    async fn list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>, stream_contracts::ProducerError> {
        Ok(self.sql_list(filter, limit, offset).await?)
    }
    async fn stats(&self) -> Result<DlqStats, stream_contracts::ProducerError> {
        Ok(self.sql_stats().await?)
    }
    async fn delete(&self, id: i64) -> Result<bool, stream_contracts::ProducerError> {
        Ok(self.sql_delete(id).await?)
    }
    async fn ping(&self) -> Result<(), stream_contracts::ProducerError> {
        Ok(self.sql_ping().await?)
    }
    async fn purge(&self, purge: &Purge) -> Result<u64, stream_contracts::ProducerError> {
        Ok(self.sql_purge(purge).await?)
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
