//! The record path: sources' sinks push into the queue; the dispatcher pops batches,
//! throttles, resolves each record's topic, and delivers; everything settles its cursor.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use api_client::{Chunks, CursorTracker, FetchSeq, Record, Rejected};
use async_trait::async_trait;
use bytes::Bytes;
use ingestion_modes::{Emitted, Sink};
use producer::{FailureReason, NewDeadLetter, OutgoingRecord};
use queue::{MessageId, Priority, PushError, QueueItem};
use serde_json::Value;

use crate::RecordPath;

/// Per-stream counters, shared by the stream's records.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Records Kafka acknowledged.
    pub delivered: AtomicU64,
    /// Records dead-lettered, for any reason.
    pub dead_lettered: AtomicU64,
    /// When the last record was acknowledged, ms since the epoch (0: never).
    pub last_delivery_ms: AtomicI64,
    /// Records that failed a schema (both modes), the last one, and when one was last
    /// logged (`contracts.rs`).
    pub schema_violations: AtomicU64,
    pub last_violation: std::sync::Mutex<Option<crate::contracts::LastViolation>>,
    pub violation_logged_ms: AtomicI64,
}

/// What every record of one stream shares.
#[derive(Debug)]
pub struct SourceCtx {
    pub id: Arc<str>,
    pub source_type: Arc<str>,
    /// `id` and `source_type` as header values: cloning `Bytes` shares, not copies.
    pub id_header: Bytes,
    pub type_header: Bytes,
    pub priority: Priority,
    pub tracker: Arc<CursorTracker>,
    pub counters: Arc<StreamCounters>,
    /// Its records in the pipeline, for its fair share of the queue (`throttling::PerSource`).
    pub share: Arc<throttling::SourceShare>,
    /// Where its records keep their event time, and the newest seen.
    pub freshness: Arc<api_client::Freshness>,
    /// Cluster mode: where the source is reported once another worker has claimed it
    /// (a commit refused by the fence, or the claim check before a fetch); this worker
    /// must stop it.
    pub fenced: Option<tokio::sync::mpsc::UnboundedSender<Arc<str>>>,
}

impl SourceCtx {
    /// The context of source `id` (of connector type `source_type`) entering `path`
    /// with `priority`: its fetch state in `tracker`, its records' event time (if any)
    /// in `freshness`; outside cluster mode (no fence).
    pub fn new(
        path: &RecordPath,
        id: &str,
        source_type: &str,
        priority: Priority,
        tracker: Arc<CursorTracker>,
        freshness: api_client::Freshness,
    ) -> Self {
        Self {
            id: id.into(),
            source_type: source_type.into(),
            id_header: Bytes::copy_from_slice(id.as_bytes()),
            type_header: Bytes::copy_from_slice(source_type.as_bytes()),
            priority,
            tracker,
            counters: Arc::new(StreamCounters::default()),
            share: path.per_source.share(&Arc::from(id)),
            freshness: Arc::new(freshness),
            fenced: None,
        }
    }

    /// Reports that another worker has claimed the source, so the cluster stops it
    /// here; `false` outside cluster mode (nobody to tell).
    fn claimed_elsewhere(&self) -> bool {
        self.fenced
            .as_ref()
            .is_some_and(|f| f.send(self.id.clone()).is_ok())
    }
}

/// A record in the queue: already serialized, routed and keyed — the parsed value is
/// gone once the record is enqueued, so the queue holds bytes only.
#[derive(Debug)]
pub struct QueuedRecord {
    pub(crate) ctx: Arc<SourceCtx>,
    pub(crate) seq: FetchSeq,
    pub(crate) priority: Priority,
    pub(crate) record: OutgoingRecord,
}

/// What one queued record costs beyond its bytes: the item, the record's fixed part and
/// its five header slots. Counted against `queue_max_bytes` with the bytes.
const ITEM_OVERHEAD: usize = std::mem::size_of::<QueuedRecord>()
    + 5 * std::mem::size_of::<(producer::HeaderName, Bytes)>()
    + 64;

// A record's fixed cost stays well under a kilobyte (536 bytes when written).
const _: () = assert!(ITEM_OVERHEAD < 1024);

impl QueueItem for QueuedRecord {
    fn priority(&self) -> Priority {
        self.priority
    }

    /// The record's real footprint: payload, key, id and the header values it owns
    /// (the shared per-source values are not counted per record), plus the fixed cost.
    fn size_bytes(&self) -> usize {
        record_size(&self.record)
    }
}

/// At most this many bytes (as the queue counts them) of records evicted by one batch
/// are held before they are dead-lettered: beyond the cap, what a batch holds of the
/// records it pushed out stays this small.
const EVICTED_HELD_BYTES: usize = 1024 * 1024;

/// What a queued record counts against `queue_max_bytes`.
fn record_size(r: &OutgoingRecord) -> usize {
    r.payload.len() + r.key.as_ref().map_or(0, Bytes::len) + 2 * r.id.len() + ITEM_OVERHEAD
}

impl RecordPath {
    /// Waits until the queue has room for a record of `size` bytes (or is closing). The
    /// queue has no waiter for room that ignores its overflow strategy, so this looks
    /// again every 5 ms while it is full: only a body still arriving waits here.
    async fn wait_for_room(&self, size: usize) {
        loop {
            let c = self.queue.config();
            // An empty queue always has room: a record larger than the byte bound is the
            // queue's to refuse, not a reason to wait for ever.
            let room = self.queue.is_empty()
                || self.queue.len() < c.max_items
                    && c.max_bytes
                        .is_none_or(|max| self.queue.bytes().saturating_add(size as u64) <= max);
            if room || self.shutting_down() || self.queue.is_closed() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// The ingestion time of a batch: as a number and as a ready header value.
#[derive(Debug, Clone)]
pub(crate) struct Ingested {
    pub(crate) ms: i64,
    pub(crate) header: Bytes,
    pub(crate) at: Instant,
}

impl Ingested {
    pub(crate) fn now() -> Self {
        let ms = now_ms();
        Self {
            ms,
            header: Bytes::from(ms.to_string()),
            at: Instant::now(),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `metadata_in_payload`'s metadata object, written after the record's own text.
#[derive(serde::Serialize)]
struct WrappedMeta<'a> {
    message_id: &'a str,
    source_id: &'a str,
    source_type: &'a str,
    priority: &'a str,
    ingested_at_ms: i64,
}

/// A record's fields, read from its JSON text by the rules that need them.
pub(crate) struct Text<'a>(pub(crate) &'a Record);

impl topic_resolver::Fields for Text<'_> {
    fn field(&self, tokens: &[String]) -> Option<Cow<'_, Value>> {
        self.0.field(tokens).map(Cow::Owned)
    }
}

impl RecordPath {
    /// The outgoing form of a record as it enters the queue: its text as the payload
    /// (shared, not copied; with `metadata_in_payload`, wrapped once into the batch's
    /// `arena`), its topic and key resolved, its metadata as headers with static names.
    /// `embed_metadata` is `metadata_in_payload`, read once per batch by the caller;
    /// `ingested_at` is taken once per batch.
    pub(crate) fn outgoing(
        &self,
        ctx: &SourceCtx,
        record: &Record,
        priority: Priority,
        embed_metadata: bool,
        ingested_at: &Ingested,
        arena: &mut Chunks,
    ) -> serde_json::Result<(OutgoingRecord, topic_resolver::Strategy)> {
        let d = self.resolver.resolve(&topic_resolver::RecordView {
            source_id: &ctx.id,
            source_type: &ctx.source_type,
            value: &Text(record),
        });
        let hex = MessageId::generate().hex();
        let id_header = arena.copy(hex.as_bytes());
        let id: Arc<str> = Arc::from(hex.as_str());
        let payload = if embed_metadata {
            // Room for the record and its metadata (source id and type are short).
            let mut out = bytes::BufMut::writer(arena.buf(record.len() + 256));
            let written = out
                .write_all(b"{\"data\":")
                .and_then(|()| out.write_all(record.as_bytes()))
                .and_then(|()| out.write_all(b",\"_metadata\":"))
                .map_err(serde_json::Error::io)
                .and_then(|()| {
                    serde_json::to_writer(
                        &mut out,
                        &WrappedMeta {
                            message_id: &id,
                            source_id: &ctx.id,
                            source_type: &ctx.source_type,
                            priority: priority.as_str(),
                            ingested_at_ms: ingested_at.ms,
                        },
                    )
                })
                .and_then(|()| out.write_all(b"}").map_err(serde_json::Error::io));
            if let Err(e) = written {
                arena.discard();
                return Err(e);
            }
            arena.take()
        } else {
            record.bytes()
        };
        let headers = Arc::new([
            ("message_id".into(), id_header),
            ("source_id".into(), ctx.id_header.clone()),
            ("source_type".into(), ctx.type_header.clone()),
            (
                "priority".into(),
                Bytes::from_static(priority.as_str().as_bytes()),
            ),
            ("ingested_at_ms".into(), ingested_at.header.clone()),
        ]);
        let strategy = d.strategy;
        Ok((
            OutgoingRecord {
                id,
                source_id: ctx.id.clone(),
                topic: d.topic,
                key: d.key.map(Bytes::from),
                payload,
                headers,
                critical: priority == Priority::Critical,
                emitted_at: Some(ingested_at.at),
            },
            strategy,
        ))
    }

    /// Dead-letters records a full queue evicted (`drop_oldest`), then settles them.
    async fn dead_letter_evicted(&self, items: &[QueuedRecord]) {
        self.dead_letter_items(
            items,
            FailureReason::QueueOverflow,
            "evicted by a full queue (drop_oldest)",
        )
        .await;
    }

    /// Dead-letters queued records that never reached the producer, then settles them.
    pub async fn dead_letter_items(
        &self,
        items: &[QueuedRecord],
        reason: FailureReason,
        details: &str,
    ) {
        if items.is_empty() {
            return;
        }
        let letters = items
            .iter()
            .map(|i| NewDeadLetter {
                record: i.record.clone(),
                reason,
                details: details.to_owned(),
            })
            .collect();
        self.delivery.dead_letter(letters).await;
        self.meter.totals.dead_lettered(items.len());
        for i in items {
            i.ctx.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        }
        settle(items.iter().map(|i| (&i.ctx, i.seq))).await;
    }
}

/// Cursor commits that failed (not those refused because another worker claimed the
/// source), by source; the source shows `failing` until a commit lands again.
pub const CURSOR_COMMIT_FAILURES: &str = "cursor_commit_failures_total";

/// Settles records with their cursor trackers, grouped per fetch.
pub async fn settle<'a>(items: impl Iterator<Item = (&'a Arc<SourceCtx>, FetchSeq)>) {
    // Keyed by the context's address (as a number, so the future stays `Send`).
    let mut groups: HashMap<(usize, FetchSeq), (Arc<SourceCtx>, usize)> = HashMap::new();
    for (ctx, seq) in items {
        groups
            .entry((Arc::as_ptr(ctx) as usize, seq))
            .or_insert_with(|| (ctx.clone(), 0))
            .1 += 1;
    }
    for ((_, seq), (ctx, n)) in groups {
        ctx.share.settled(n);
        match ctx.tracker.settle(seq, n).await {
            Ok(()) => {}
            Err(api_client::Error::Fenced(why)) if ctx.claimed_elsewhere() => {
                tracing::warn!(source = %ctx.id, %why, "fetch state claimed by another worker: stopping the source here");
            }
            Err(e) => {
                metrics::counter!(CURSOR_COMMIT_FAILURES, "source" => ctx.id.to_string())
                    .increment(1);
                tracing::error!(source = %ctx.id, error = &e as &dyn std::error::Error, "cannot commit cursor; the records will be fetched again after a restart");
            }
        }
    }
}

/// A stream's entrance into the pipeline.
#[derive(Debug)]
pub struct StreamSink {
    /// The stream's context, shared by its records.
    pub ctx: Arc<SourceCtx>,
    /// The record path its records enter.
    pub shared: Arc<RecordPath>,
}

#[async_trait]
impl Sink for StreamSink {
    /// Another worker claimed the source: the cluster stops it here.
    async fn fenced(&self, _source_id: &str, _why: &str) {
        self.ctx.claimed_elsewhere();
    }

    async fn emit(&self, batch: Emitted) -> Result<(), ingestion_modes::Error> {
        self.enter(batch, false).await
    }

    /// A batch of a body still arriving waits for room in the queue instead of letting
    /// the overflow strategy evict or refuse: the source waits meanwhile and stops
    /// reading its body (back-pressure), so a body of any size passes in bounded memory.
    async fn emit_while_fetching(&self, batch: Emitted) -> Result<(), ingestion_modes::Error> {
        self.enter(batch, true).await
    }
}

impl StreamSink {
    /// The records of `batch` into the queue; `wait`: each waits for room first.
    async fn enter(&self, batch: Emitted, wait: bool) -> Result<(), ingestion_modes::Error> {
        let shared = &self.shared;
        self.ctx.freshness.observe(&batch.records);
        if !batch.rejected.is_empty() {
            self.dead_letter_rejected(batch.rejected).await;
        }
        let rules = shared.priority_rules();
        let config = shared.config();
        let embed = config.metadata_in_payload;
        let fair = config.throttling.fair_share;
        let own_lag = config.throttling.lag_per_source;
        let share = &self.ctx.share;
        if own_lag {
            // The delay this source's own throttle decided at the last lag check.
            let delay = shared.per_source.take_delay(share);
            if !delay.is_zero() && !shared.shutting_down() {
                tokio::time::sleep(delay).await;
            }
        }
        let own_throttle = own_lag
            .then(|| shared.throttle.get(&self.ctx.id))
            .flatten()
            .filter(|t| t.rate() < t.settings().max_rate);
        let mut topics: Vec<Arc<str>> = Vec::new();
        let capacity = shared.queue.config().max_items;
        let mut tally = topic_resolver::Tally::default();
        let ingested = Ingested::now();
        let mut arena = Chunks::default();
        let mut overflow = Vec::new();
        let mut overflow_bytes = 0usize;
        let mut closed = Vec::new();
        let contracts = shared.contracts();
        let mut violations = Vec::new();
        for (seq, value) in batch.records {
            // The first matching priority rule, else the source's priority.
            let priority = rules
                .iter()
                .find(|(p, _)| p.matches(&Text(&value)))
                .map_or(self.ctx.priority, |(_, prio)| *prio);
            let record =
                match shared.outgoing(&self.ctx, &value, priority, embed, &ingested, &mut arena) {
                    Ok((r, strategy)) => {
                        tally.add(&r.topic, strategy);
                        r
                    }
                    Err(e) => {
                        self.dead_letter_rejected(vec![(
                            seq,
                            Rejected::new(format!("cannot serialize: {e}"), b""),
                        )])
                        .await;
                        continue;
                    }
                };
            if !contracts.is_empty() {
                let found = contracts.check_text(&self.ctx.id, &record.topic, value.as_bytes());
                if let Some(v) = found {
                    let mode = contracts.mode(&self.ctx.id);
                    self.ctx.note_violation(&v, &record.topic, mode);
                    if mode == stream_config::SchemaMode::Enforce {
                        violations.push((seq, record, v.details));
                        continue;
                    }
                }
            }
            drop(value);
            if !topics.contains(&record.topic) {
                // A topic this batch had not seen yet: a templated name resolved for the
                // first time is created before its record is queued.
                if let Some(creator) = &shared.topics {
                    if !creator.is_known(&record.topic) {
                        creator.ensure([record.topic.to_string()]).await;
                    }
                }
                if topics.len() < 8 {
                    topics.push(record.topic.clone());
                }
            }
            if fair {
                shared
                    .per_source
                    .wait_for_room(share, capacity, || {
                        shared.shutting_down() || shared.queue.is_closed()
                    })
                    .await;
            }
            if let Some(t) = own_throttle.as_ref().filter(|_| !shared.shutting_down()) {
                t.acquire(1).await;
            }
            if wait {
                shared.wait_for_room(record_size(&record)).await;
            }
            share.admitted(1);
            let item = QueuedRecord {
                priority,
                ctx: self.ctx.clone(),
                seq,
                record,
            };
            let pushed = if fair {
                shared.per_source_push(share, item).await
            } else {
                shared.queue.push(item).await
            };
            match pushed {
                Ok(evicted) => {
                    overflow_bytes += evicted
                        .iter()
                        .map(|i| record_size(&i.record))
                        .sum::<usize>();
                    overflow.extend(evicted);
                    // Evicted records leave as they go, not at the end of the batch: a
                    // batch that evicts as many records as it brings would otherwise
                    // hold its own size again beyond the queue's cap.
                    if overflow_bytes >= EVICTED_HELD_BYTES {
                        shared.dead_letter_evicted(&overflow).await;
                        overflow.clear();
                        overflow_bytes = 0;
                    }
                }
                Err(PushError::Closed(item)) => closed.push(item),
                Err(e) => {
                    let why = match &e {
                        PushError::TooLarge(_) => FailureReason::RecordTooLarge,
                        // Full, Timeout: refused for want of room.
                        _ => FailureReason::QueueOverflow,
                    };
                    let reason = e.reason();
                    shared
                        .dead_letter_items(&[e.into_inner()], why, reason)
                        .await;
                }
            }
        }
        self.dead_letter_violations(violations).await;
        share.saw_topics(&topics);
        tally.publish();
        shared.dead_letter_evicted(&overflow).await;
        shared
            .dead_letter_items(
                &closed,
                FailureReason::Shutdown,
                "the pipeline was shutting down",
            )
            .await;
        Ok(())
    }

    async fn dead_letter_rejected(&self, rejected: Vec<(FetchSeq, Rejected)>) {
        self.ctx.share.admitted(rejected.len());
        let letters = rejected
            .iter()
            .map(|(_, r)| {
                let mut record = OutgoingRecord::new(
                    &self.shared.config().routing.fallback_topic,
                    &self.ctx.id,
                    Bytes::from(r.excerpt.clone()),
                );
                record.headers = Arc::new([("source_type".into(), self.ctx.type_header.clone())]);
                NewDeadLetter {
                    record,
                    reason: FailureReason::MalformedRecord,
                    details: r.reason.clone(),
                }
            })
            .collect();
        self.shared.delivery.dead_letter(letters).await;
        self.shared.meter.totals.dead_lettered(rejected.len());
        self.ctx
            .counters
            .dead_lettered
            .fetch_add(rejected.len() as u64, Ordering::Relaxed);
        settle(rejected.iter().map(|(seq, _)| (&self.ctx, *seq))).await;
    }
}

impl crate::RecordPath {
    /// Pushes a record of `share`'s source. While another source has records in the
    /// pipeline too, a full queue holds a record of a source under its fair share until
    /// there is room (the sources over theirs are waiting, so room comes) instead of
    /// refusing it: a source that arrives while another fills the queue gets its share.
    /// Otherwise the queue's overflow strategy applies as configured.
    pub(crate) async fn per_source_push(
        &self,
        share: &throttling::SourceShare,
        item: crate::sink::QueuedRecord,
    ) -> Result<Vec<crate::sink::QueuedRecord>, queue::PushError<crate::sink::QueuedRecord>> {
        let mut item = item;
        loop {
            let notified = self.per_source.next_settle();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.queue.push(item).await {
                Err(queue::PushError::Full(back))
                    if self.per_source.busy() > 1
                        && !self
                            .per_source
                            .over_share(share, self.queue.config().max_items)
                        && !self.shutting_down() =>
                {
                    item = back;
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_millis(100), notified).await;
                }
                other => return other,
            }
        }
    }
}
