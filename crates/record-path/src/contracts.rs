//! Data contracts at enqueue: each record is checked against its source's schema and its
//! topic's schema (`api_client::Contracts`, compiled once per configuration, swapped
//! whole on a reload). A record
//! failing one in `enforce` mode is dead-lettered as `schema_violation` with the failing
//! JSON pointers and messages; in `observe` mode it is delivered. Both count
//! `schema_violations_total{source,schema}` and show as the source's last violation.
//! A replay re-validates with [`stored_record`] (the stream manager's DLQ replay).

use std::sync::atomic::Ordering;

use api_client::{FetchSeq, Violation};
use producer::{FailureReason, NewDeadLetter, OutgoingRecord};
use serde_json::Value;
use stream_config::SchemaMode;

use crate::sink::{now_ms, settle, SourceCtx, StreamSink};

/// Records that failed a schema, by source and schema label (both modes).
pub const SCHEMA_VIOLATIONS: &str = "schema_violations_total";

/// Observe mode logs one violation per source per this many milliseconds.
const LOG_EVERY_MS: i64 = 10_000;

/// A source's last violation, as `/streams/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastViolation {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The schema's label (`builtin:NAME`, the file's name, `inline:<key>`).
    pub schema: String,
    /// The topic the record was routed to.
    pub topic: String,
    /// `enforce` (dead-lettered) or `observe` (delivered).
    pub mode: &'static str,
    /// The failing JSON pointers and the validator's messages.
    pub details: String,
}

impl SourceCtx {
    /// Counts a violation, keeps it as the source's last one and logs it (in observe
    /// mode at most once per 10 s per source).
    pub(crate) fn note_violation(&self, v: &Violation, topic: &str, mode: SchemaMode) {
        metrics::counter!(SCHEMA_VIOLATIONS, "source" => self.id.to_string(), "schema" => v.schema.to_string())
            .increment(1);
        let c = &self.counters;
        c.schema_violations.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let mode = match mode {
            SchemaMode::Enforce => "enforce",
            SchemaMode::Observe => "observe",
        };
        let logged = c.violation_logged_ms.load(Ordering::Relaxed);
        if mode == "enforce" || now - logged >= LOG_EVERY_MS {
            c.violation_logged_ms.store(now, Ordering::Relaxed);
            tracing::warn!(source = %self.id, schema = %v.schema, topic, mode, details = %v.details, "record violates its schema");
        }
        *c.last_violation.lock().unwrap_or_else(|e| e.into_inner()) = Some(LastViolation {
            at_ms: now,
            schema: v.schema.to_string(),
            topic: topic.to_owned(),
            mode,
            details: v.details.clone(),
        });
    }
}

impl StreamSink {
    /// Dead-letters records that failed their schema (never queued), then settles them.
    pub(crate) async fn dead_letter_violations(
        &self,
        failed: Vec<(FetchSeq, OutgoingRecord, String)>,
    ) {
        if failed.is_empty() {
            return;
        }
        self.ctx.share.admitted(failed.len());
        let seqs: Vec<FetchSeq> = failed.iter().map(|(seq, _, _)| *seq).collect();
        let letters = failed
            .into_iter()
            .map(|(_, record, details)| NewDeadLetter {
                record,
                reason: FailureReason::SchemaViolation,
                details,
            })
            .collect();
        self.shared.delivery.dead_letter(letters).await;
        self.ctx
            .counters
            .dead_lettered
            .fetch_add(seqs.len() as u64, Ordering::Relaxed);
        settle(seqs.into_iter().map(|seq| (&self.ctx, seq))).await;
    }
}

/// The record a dead letter holds, unwrapped from `metadata_in_payload`'s
/// `{"data": …, "_metadata": …}` when it is so wrapped.
pub fn stored_record(payload: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    match v {
        Value::Object(mut m) if m.len() == 2 && m.contains_key("_metadata") => m.remove("data"),
        v => Some(v),
    }
}
