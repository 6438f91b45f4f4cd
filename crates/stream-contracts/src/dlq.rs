//! The dead-letter queue's seam: the `DeadLetterStore` trait, its row types, and
//! `MemoryDeadLetterStore`. The SQL implementation (SQLite, PostgreSQL) is the `store`
//! crate's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{FailureReason, OutgoingRecord, ProducerError as DlqError};

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
            id: self.message_id.as_str().into(),
            source_id: self.source_id.as_str().into(),
            topic: topic.unwrap_or(&self.source_topic).into(),
            key: self.key.clone().map(Bytes::from),
            payload: Bytes::from(self.payload.clone()),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.into(), Bytes::from(v)))
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

/// Which dead letters a purge deletes: rows in one of `statuses`, and of those the ones
/// last changed before `older_than_ms` and/or beyond the `keep_newest` newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// Only rows in these statuses (never empty; pending ones only when named).
    pub statuses: Vec<DlqStatus>,
    /// Rows last changed before this time (ms since the epoch).
    pub older_than_ms: Option<i64>,
    /// Keep this many of the newest matching rows, delete the rest.
    pub keep_newest: Option<u64>,
}

impl Purge {
    /// The statuses of rows that are done with (delivered, replayed or discarded):
    /// what retention removes. Pending rows are never purged unless named.
    pub const SETTLED: [DlqStatus; 3] = [
        DlqStatus::RetrySuccess,
        DlqStatus::Replayed,
        DlqStatus::Discarded,
    ];

    fn matches(&self, row: &DeadLetter, rank_from_newest: u64) -> bool {
        self.statuses.contains(&row.status)
            && (self.older_than_ms.is_some_and(|t| row.updated_at < t)
                || self.keep_newest.is_some_and(|k| rank_from_newest >= k))
    }
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
    /// Deletes the rows `purge` selects; returns how many.
    async fn purge(&self, purge: &Purge) -> Result<u64, DlqError>;
    /// Checks the store answers.
    async fn ping(&self) -> Result<(), DlqError>;
}

/// Milliseconds since the epoch, now: the clock of the dead letters' timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Dead letters in memory, with the same semantics as the SQL store (one row per
/// `message_id`, statuses, retry times): for tests and for users who accept losing
/// dead letters at exit.
#[derive(Debug, Default)]
pub struct MemoryDeadLetterStore {
    rows: Mutex<BTreeMap<i64, DeadLetter>>,
}

impl MemoryDeadLetterStore {
    fn rows(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, DeadLetter>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn matches(filter: &DlqFilter, row: &DeadLetter) -> bool {
    filter.status.is_none_or(|s| s == row.status)
        && filter
            .reason
            .as_ref()
            .is_none_or(|r| *r == row.failure_reason)
        && filter
            .source_id
            .as_ref()
            .is_none_or(|s| *s == row.source_id)
}

/// The stored form of a record's headers: a JSON array of `[name, value]`.
pub fn headers_json(record: &OutgoingRecord) -> String {
    let headers: Vec<(&str, std::borrow::Cow<'_, str>)> = record
        .headers
        .iter()
        .map(|(k, v)| (k.as_ref(), String::from_utf8_lossy(v)))
        .collect();
    serde_json::to_string(&headers).unwrap_or_else(|_| "[]".to_owned())
}

/// The payload as JSON text when it is JSON (for operators reading the DLQ).
pub fn payload_json(record: &OutgoingRecord) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(&record.payload)
        .ok()
        .map(|_| String::from_utf8_lossy(&record.payload).into_owned())
}

/// The status and first retry time of a new dead letter.
pub fn initial_status(
    reason: FailureReason,
    now_ms: i64,
    first_retry: Duration,
) -> (DlqStatus, Option<i64>) {
    if reason.is_retriable() {
        (
            DlqStatus::QueuedForRetry,
            Some(now_ms + first_retry.as_millis() as i64),
        )
    } else {
        (DlqStatus::PermanentFailure, None)
    }
}

#[async_trait]
impl DeadLetterStore for MemoryDeadLetterStore {
    async fn insert(
        &self,
        letters: &[NewDeadLetter],
        first_retry: Duration,
    ) -> Result<(), DlqError> {
        let now = now_ms();
        let mut rows = self.rows();
        for l in letters {
            let r = &l.record;
            let (status, retry_at) = initial_status(l.reason, now, first_retry);
            if let Some(row) = rows.values_mut().find(|row| *row.message_id == *r.id) {
                row.failure_reason = l.reason.as_str().to_owned();
                row.error_details = l.details.clone();
                row.status = status;
                row.retry_at = retry_at;
                row.source_topic = r.topic.to_string();
                row.updated_at = now;
                continue;
            }
            let id = rows.keys().next_back().map_or(1, |k| k + 1);
            rows.insert(
                id,
                DeadLetter {
                    id,
                    message_id: r.id.to_string(),
                    source_id: r.source_id.to_string(),
                    source_topic: r.topic.to_string(),
                    key: r.key.as_ref().map(|k| k.to_vec()),
                    payload: r.payload.to_vec(),
                    payload_json: payload_json(r),
                    headers: headers_json(r),
                    failure_reason: l.reason.as_str().to_owned(),
                    error_details: l.details.clone(),
                    retry_count: 0,
                    status,
                    retry_at,
                    created_at: now,
                    updated_at: now,
                },
            );
        }
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: i64) -> Result<Vec<DeadLetter>, DlqError> {
        let mut due: Vec<DeadLetter> = self
            .rows()
            .values()
            .filter(|r| {
                r.status == DlqStatus::QueuedForRetry && r.retry_at.is_some_and(|t| t <= now_ms)
            })
            .cloned()
            .collect();
        due.sort_by_key(|r| r.retry_at);
        due.truncate(limit.max(0) as usize);
        Ok(due)
    }

    async fn retry_failed(
        &self,
        id: i64,
        details: &str,
        next_retry_at: Option<i64>,
    ) -> Result<(), DlqError> {
        if let Some(row) = self.rows().get_mut(&id) {
            row.retry_count += 1;
            row.error_details = details.to_owned();
            row.status = if next_retry_at.is_some() {
                DlqStatus::QueuedForRetry
            } else {
                DlqStatus::PermanentFailure
            };
            row.retry_at = next_retry_at;
            row.updated_at = now_ms();
        }
        Ok(())
    }

    async fn set_status(&self, ids: &[i64], status: DlqStatus) -> Result<u64, DlqError> {
        let mut rows = self.rows();
        let mut changed = 0;
        for id in ids {
            if let Some(row) = rows.get_mut(id) {
                row.status = status;
                row.retry_at = None;
                row.updated_at = now_ms();
                changed += 1;
            }
        }
        Ok(changed)
    }

    async fn get(&self, id: i64) -> Result<Option<DeadLetter>, DlqError> {
        Ok(self.rows().get(&id).cloned())
    }

    async fn list(
        &self,
        filter: &DlqFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeadLetter>, DlqError> {
        Ok(self
            .rows()
            .values()
            .rev()
            .filter(|r| matches(filter, r))
            .skip(offset.max(0) as usize)
            .take(limit.max(0) as usize)
            .cloned()
            .collect())
    }

    async fn stats(&self) -> Result<DlqStats, DlqError> {
        let rows = self.rows();
        let mut by_reason = BTreeMap::<String, i64>::new();
        let mut by_status = BTreeMap::<String, i64>::new();
        let mut out = DlqStats::default();
        for r in rows.values() {
            *by_reason.entry(r.failure_reason.clone()).or_default() += 1;
            *by_status.entry(r.status.as_str().to_owned()).or_default() += 1;
            if r.status.is_pending() {
                out.pending += 1;
                out.oldest_pending_at = Some(
                    out.oldest_pending_at
                        .map_or(r.created_at, |t| t.min(r.created_at)),
                );
            }
        }
        out.total = rows.len() as i64;
        out.by_reason = by_reason.into_iter().collect();
        out.by_status = by_status.into_iter().collect();
        Ok(out)
    }

    async fn delete(&self, id: i64) -> Result<bool, DlqError> {
        Ok(self.rows().remove(&id).is_some())
    }

    async fn purge(&self, purge: &Purge) -> Result<u64, DlqError> {
        let mut rows = self.rows();
        let mut rank = 0u64;
        let mut doomed = Vec::new();
        for (id, row) in rows.iter().rev() {
            if purge.statuses.contains(&row.status) {
                if purge.matches(row, rank) {
                    doomed.push(*id);
                }
                rank += 1;
            }
        }
        for id in &doomed {
            rows.remove(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn ping(&self) -> Result<(), DlqError> {
        Ok(())
    }
}
