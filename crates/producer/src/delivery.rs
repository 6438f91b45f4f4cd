//! `Delivery`: the producer and the DLQ together. Every record handed to `deliver` is
//! acknowledged by Kafka or dead-lettered with its reason; if the DLQ store is down,
//! dead letters wait in a bounded memory buffer until it returns. `retry_due` and
//! `replay` send dead letters again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics as m;
use crate::Error as DlqError;
use crate::{DeadLetter, DeadLetterStore, DlqStatus, NewDeadLetter};
use crate::{FailureReason, Outcome, OutgoingRecord, Producer};

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Acknowledged by Kafka.
    pub delivered: usize,
    /// Handed to the DLQ (stored, or buffered while the store is down).
    pub dead_lettered: usize,
    /// The dead-lettered records' ids and reasons.
    pub failures: Vec<(String, FailureReason)>,
}

/// The producer and its dead-letter queue.
#[derive(Debug)]
pub struct Delivery {
    producer: Arc<dyn Producer>,
    dlq: Arc<dyn DeadLetterStore>,
    first_retry: Duration,
    /// Dead letters waiting for the store, each with its place in line (a sequence
    /// number that only grows), so a flush removes exactly what it wrote.
    buffer: Mutex<Buffer>,
    /// One flush at a time: two concurrent flushes would write the same letters twice.
    flushing: tokio::sync::Mutex<()>,
    buffer_capacity: usize,
    dlq_healthy: AtomicBool,
    dlq_enabled: AtomicBool,
    /// Set at shutdown: dead letters never wait for room in memory (what the store
    /// cannot take is journaled at exit instead).
    closing: AtomicBool,
    /// When each source last logged a drop (`enable_dlq: false`).
    dropped_logged: Mutex<std::collections::HashMap<Arc<str>, std::time::Instant>>,
}

impl Delivery {
    /// Joins a producer and a store; retriable dead letters are first retried after 1 s.
    pub fn new(producer: Arc<dyn Producer>, dlq: Arc<dyn DeadLetterStore>) -> Self {
        Self {
            producer,
            dlq,
            first_retry: Duration::from_secs(1),
            buffer: Mutex::new(Buffer::default()),
            flushing: tokio::sync::Mutex::new(()),
            buffer_capacity: 100_000,
            dlq_healthy: AtomicBool::new(true),
            dlq_enabled: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            dropped_logged: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The delay before a retriable dead letter's first background retry.
    pub fn with_first_retry(mut self, delay: Duration) -> Self {
        self.first_retry = delay;
        self
    }

    /// Most dead letters held in memory while the store is down; beyond it,
    /// `dead_letter` waits (backpressure) rather than drop anything.
    pub fn with_buffer_capacity(mut self, capacity: usize) -> Self {
        self.buffer_capacity = capacity.max(1);
        self
    }

    /// With `false` (`enable_dlq: false`), what cannot be delivered is dropped instead
    /// of stored: counted in `dlq_dropped_total{source,reason}` and logged once per source
    /// per minute. On by default; can change at run time.
    pub fn set_dlq_enabled(&self, enabled: bool) {
        self.dlq_enabled.store(enabled, Ordering::Relaxed);
    }

    /// Shutdown has begun: from now on `dead_letter` never waits for room in memory.
    /// Call [`Delivery::spill`] last, so what the store could not take is kept on disk.
    pub fn begin_shutdown(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Writes the dead letters still held in memory to the journal at `path` (appending)
    /// and forgets them; returns how many. Call at exit after a last
    /// [`Delivery::flush_buffer`].
    pub fn spill(&self, path: &std::path::Path) -> std::io::Result<usize> {
        let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buf.letters.is_empty() {
            return Ok(0);
        }
        let letters: Vec<NewDeadLetter> = buf.letters.iter().map(|(_, l)| l.clone()).collect();
        crate::journal::append(path, &letters)?;
        buf.letters.clear();
        metrics::gauge!(m::DLQ_BUFFERED).set(0.0);
        Ok(letters.len())
    }

    /// Stores the dead letters of the journal at `path` (a previous run's spill) and
    /// removes it; returns how many. A line that cannot be read is set aside in
    /// `<path>.rejected` (warned about, counted) and the others are stored. On error the
    /// journal stays for the next attempt.
    pub async fn replay_journal(&self, path: &std::path::Path) -> Result<usize, DlqError> {
        let journal = crate::journal::read(path).map_err(DlqError::dlq)?;
        if journal.is_empty() {
            return Ok(0);
        }
        for chunk in journal.letters.chunks(500) {
            self.dlq.insert(chunk, self.first_retry).await?;
            count_writes(chunk);
        }
        crate::journal::finish(path, &journal).map_err(DlqError::dlq)?;
        Ok(journal.letters.len())
    }

    /// The producer.
    pub fn producer(&self) -> &Arc<dyn Producer> {
        &self.producer
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn DeadLetterStore> {
        &self.dlq
    }

    /// The DLQ's counts (also published as the `dlq_size` gauge).
    pub async fn dlq_stats(&self) -> Result<crate::DlqStats, DlqError> {
        let stats = self.dlq.stats().await?;
        metrics::gauge!(m::DLQ_SIZE).set(stats.pending as f64);
        for status in DlqStatus::ALL {
            let n = stats
                .by_status
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            metrics::gauge!(m::DLQ_ROWS, "status" => status.as_str()).set(n as f64);
        }
        let oldest = stats.oldest_pending_at.map_or(0.0, |t| {
            (stream_contracts::now_ms() - t).max(0) as f64 / 1000.0
        });
        metrics::gauge!(m::DLQ_OLDEST_PENDING).set(oldest);
        Ok(stats)
    }

    /// False while dead letters cannot be written and wait in memory.
    pub fn dlq_healthy(&self) -> bool {
        self.dlq_healthy.load(Ordering::Relaxed)
    }

    /// Dead letters waiting in memory for the store.
    pub fn buffered(&self) -> usize {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .letters
            .len()
    }

    /// Sends a batch; failures after the producer's retries go to the DLQ.
    pub async fn deliver(&self, records: Vec<OutgoingRecord>) -> DeliveryReport {
        let outcomes = self.producer.send(records).await;
        self.settle(outcomes).await
    }

    /// Dead-letters the failed outcomes; counts the rest.
    pub async fn settle(&self, outcomes: Vec<(OutgoingRecord, Outcome)>) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let mut letters = Vec::new();
        for (record, outcome) in outcomes {
            match outcome {
                Ok(_) => report.delivered += 1,
                Err(e) => {
                    report.failures.push((record.id.to_string(), e.reason));
                    let details = match &e.code {
                        Some(code) => format!("{code}: {}", e.message),
                        None => e.message.clone(),
                    };
                    letters.push(NewDeadLetter {
                        record,
                        reason: e.reason,
                        details,
                    });
                }
            }
        }
        report.dead_lettered = letters.len();
        self.dead_letter(letters).await;
        report
    }

    /// Stores dead letters; while the store is down they wait in memory (and health
    /// turns unhealthy); when memory is full this waits for the store.
    pub async fn dead_letter(&self, letters: Vec<NewDeadLetter>) {
        if letters.is_empty() {
            return;
        }
        if !self.dlq_enabled.load(Ordering::Relaxed) {
            self.drop_letters(&letters);
            return;
        }
        // Keep order: anything already buffered goes first.
        if self.buffered() == 0 {
            match self.dlq.insert(&letters, self.first_retry).await {
                Ok(()) => {
                    count_writes(&letters);
                    self.dlq_healthy.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        records = letters.len(),
                        "DLQ store unavailable; holding dead letters in memory"
                    );
                    self.dlq_healthy.store(false, Ordering::Relaxed);
                }
            }
        }
        let mut pending: VecDeque<NewDeadLetter> = letters.into();
        loop {
            {
                let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                let capacity = if self.closing.load(Ordering::Relaxed) {
                    usize::MAX
                } else {
                    self.buffer_capacity
                };
                while buf.letters.len() < capacity {
                    match pending.pop_front() {
                        Some(l) => buf.push(l),
                        None => break,
                    }
                }
                metrics::gauge!(m::DLQ_BUFFERED).set(buf.letters.len() as f64);
            }
            if pending.is_empty() {
                return;
            }
            // Memory is full: wait for the store rather than drop anything.
            if self.flush_buffer().await.is_err() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Writes buffered dead letters to the store (call it periodically). Ok once the
    /// buffer is empty. Flushes run one at a time (a second waits for the first), and
    /// each removes from the buffer exactly the letters it wrote, so concurrent callers
    /// neither write a letter twice nor drop one unwritten. A flush cancelled while it
    /// writes leaves its letters buffered (they may then be written again: a duplicate
    /// row is updated in place, never lost).
    pub async fn flush_buffer(&self) -> Result<(), DlqError> {
        let _one_at_a_time = self.flushing.lock().await;
        loop {
            let (chunk, last): (Vec<NewDeadLetter>, u64) = {
                let buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                let chunk: Vec<_> = buf.letters.iter().take(500).cloned().collect();
                let last = chunk.last().map_or(0, |(seq, _)| *seq);
                (chunk.into_iter().map(|(_, l)| l).collect(), last)
            };
            if chunk.is_empty() {
                self.dlq_healthy.store(true, Ordering::Relaxed);
                return Ok(());
            }
            match self.dlq.insert(&chunk, self.first_retry).await {
                Ok(()) => {
                    count_writes(&chunk);
                    let mut buf = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                    // Only what was written goes: `spill` may have emptied the buffer
                    // meanwhile and new letters may stand behind those written.
                    while buf.letters.front().is_some_and(|(seq, _)| *seq <= last) {
                        buf.letters.pop_front();
                    }
                    metrics::gauge!(m::DLQ_BUFFERED).set(buf.letters.len() as f64);
                }
                Err(e) => {
                    self.dlq_healthy.store(false, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}

/// Dead letters held in memory, in order, each numbered by its place in line.
#[derive(Debug, Default)]
struct Buffer {
    letters: VecDeque<(u64, NewDeadLetter)>,
    next_seq: u64,
}

impl Buffer {
    fn push(&mut self, letter: NewDeadLetter) {
        self.next_seq += 1;
        self.letters.push_back((self.next_seq, letter));
    }
}

impl Delivery {
    /// `enable_dlq: false`: counts and (rate-limited) logs what is dropped.
    fn drop_letters(&self, letters: &[NewDeadLetter]) {
        // Counted per (source, reason) group, not per record.
        let mut groups: std::collections::HashMap<(&Arc<str>, FailureReason), u64> =
            std::collections::HashMap::new();
        for l in letters {
            *groups.entry((&l.record.source_id, l.reason)).or_default() += 1;
        }
        let mut by_source: std::collections::HashMap<&Arc<str>, (u64, FailureReason)> =
            std::collections::HashMap::new();
        for ((source, reason), n) in groups {
            metrics::counter!(m::DLQ_DROPPED, "source" => source.to_string(), "reason" => reason.as_str())
                .increment(n);
            by_source.entry(source).or_insert((0, reason)).0 += n;
        }
        let mut logged = self
            .dropped_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        for (source, (n, reason)) in by_source {
            let due = logged
                .get(source)
                .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60));
            if due {
                logged.insert(source.clone(), now);
                tracing::warn!(
                    %source,
                    records = n,
                    reason = reason.as_str(),
                    "enable_dlq is false: undeliverable records dropped (logged once a minute per source; see dlq_dropped_total)"
                );
            }
        }
    }
}

fn count_writes(letters: &[NewDeadLetter]) {
    for l in letters {
        metrics::counter!(m::DLQ_WRITES, "reason" => l.reason.as_str()).increment(1);
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
