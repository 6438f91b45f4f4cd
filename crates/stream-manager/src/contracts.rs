//! Data contracts at enqueue: each record is checked against its source's schema and its
//! topic's schema (compiled once per configuration, swapped whole on a reload). A record
//! failing one in `enforce` mode is dead-lettered as `schema_violation` with the failing
//! JSON pointers and messages; in `observe` mode it is delivered. Both count
//! `schema_violations_total{source,schema}` and show as the source's last violation.
//! Replay re-validates (`dlq.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use api_client::FetchSeq;
use producer::{FailureReason, NewDeadLetter, OutgoingRecord};
use serde_json::Value;
use stream_config::{SchemaMode, SchemaRef, SchemaSource, StreamConfig};

use crate::pipeline::{now_ms, settle, SourceCtx, StreamSink};
use crate::schema_scan::{ScanSchema, Verdict};
use crate::{Error, Result};

/// The names `schema: builtin:NAME` may use (the connectors' shipped schemas).
pub fn builtin_schemas() -> Vec<String> {
    api_client::builtin_schemas()
        .map(|(n, _)| n.to_owned())
        .collect()
}

/// Records that failed a schema, by source and schema label (both modes).
pub(crate) const SCHEMA_VIOLATIONS: &str = "schema_violations_total";

/// At most this many failing pointers are kept in a dead letter's details.
const MAX_ERRORS: usize = 5;
/// Each validator message is cut to this many characters.
const MAX_MESSAGE: usize = 200;
/// Observe mode logs one violation per source per this many milliseconds.
const LOG_EVERY_MS: i64 = 10_000;

/// One compiled schema and the name it is counted under.
pub(crate) struct Schema {
    label: Arc<str>,
    validator: jsonschema::Validator,
    /// The same schema on the record's text (`None`: it uses what that path cannot
    /// follow, and every record is parsed).
    fast: Option<ScanSchema>,
}

/// Every schema of one configuration, compiled.
#[derive(Default)]
pub(crate) struct Contracts {
    sources: HashMap<String, Arc<Schema>>,
    topics: HashMap<String, Arc<Schema>>,
    modes: HashMap<String, SchemaMode>,
    default_mode: SchemaMode,
    /// Where schema files may be read (the builder's `file_roots`; none: anywhere).
    roots: Option<Vec<PathBuf>>,
}

impl std::fmt::Debug for Contracts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contracts")
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A record that failed a schema.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) schema: Arc<str>,
    /// `schema <label>: <pointer>: <message>; …`
    pub(crate) details: String,
}

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

fn compile_ref(
    owner: &str,
    schema: &SchemaRef,
    roots: Option<&[PathBuf]>,
) -> std::result::Result<Arc<Schema>, String> {
    let doc = match schema.source() {
        SchemaSource::Builtin(name) => {
            let text = api_client::builtin_schema(name).ok_or_else(|| {
                let known: Vec<&str> = api_client::builtin_schemas().map(|(n, _)| n).collect();
                format!(
                    "unknown built-in schema `{name}` (known: {})",
                    known.join(", ")
                )
            })?;
            serde_json::from_str(text).map_err(|e| format!("built-in schema `{name}`: {e}"))?
        }
        SchemaSource::File(p) => stream_config::read_schema_file(p, roots.unwrap_or_default())?,
        SchemaSource::Inline(m) => Value::Object(m.clone()),
    };
    let validator = stream_config::compile_schema(&doc)?;
    Ok(Arc::new(Schema {
        label: schema.label(owner).into(),
        validator,
        fast: ScanSchema::compile(&doc),
    }))
}

impl Contracts {
    /// Compiles every schema of `cfg` (files read under `roots` when given); every
    /// failing one is named in the error, and nothing is kept.
    pub(crate) fn compile(cfg: &StreamConfig, roots: Option<&[PathBuf]>) -> Result<Self> {
        let mut out = Contracts {
            default_mode: cfg.contracts.mode,
            roots: roots.map(<[PathBuf]>::to_vec),
            ..Contracts::default()
        };
        let mut errors = Vec::new();
        for (topic, schema) in &cfg.contracts.topics {
            let owner = format!("contracts.topics.{topic}");
            match compile_ref(&owner, schema, roots) {
                Ok(s) => drop(out.topics.insert(topic.clone(), s)),
                Err(e) => errors.push(format!("{owner}: {e}")),
            }
        }
        for (id, src) in &cfg.sources {
            if let Some(mode) = src.schema_mode {
                out.modes.insert(id.clone(), mode);
            }
            if let Some(schema) = &src.schema {
                let owner = format!("sources.{id}.schema");
                match compile_ref(&format!("sources.{id}"), schema, roots) {
                    Ok(s) => drop(out.sources.insert(id.clone(), s)),
                    Err(e) => errors.push(format!("{owner}: {e}")),
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(Error::Component {
                component: "contracts".to_owned(),
                source: errors.join("; ").into(),
            })
        }
    }

    /// Compiles `cfg`'s schemas with the same roots as this set (for a reload).
    pub(crate) fn recompile(&self, cfg: &StreamConfig) -> Result<Self> {
        Self::compile(cfg, self.roots.as_deref())
    }

    /// No schema at all: the record path parses nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.topics.is_empty()
    }

    /// The mode of `source`'s records.
    pub(crate) fn mode(&self, source: &str) -> SchemaMode {
        self.modes.get(source).copied().unwrap_or(self.default_mode)
    }

    /// The first schema `text` fails, of its source's then its topic's; `None` when it
    /// passes both (or neither exists: then nothing is parsed).
    pub(crate) fn check_text(&self, source: &str, topic: &str, text: &[u8]) -> Option<Violation> {
        let src = self.sources.get(source);
        let top = self.topics.get(topic);
        if src.is_none() && top.is_none() {
            return None;
        }
        // The fast path on the text; only what it cannot pass is parsed.
        let passes = |s: &Arc<Schema>| {
            s.fast
                .as_ref()
                .is_some_and(|f| f.check(text) == Verdict::Valid)
        };
        if [src, top].into_iter().flatten().all(passes) {
            return None;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => self.check_value(source, topic, &value),
            Err(e) => {
                let schema = src.or(top).map(|s| s.label.clone()).unwrap_or_default();
                let details = format!("schema {schema}: the record is not JSON: {e}");
                Some(Violation { schema, details })
            }
        }
    }

    /// As `check_text`, for a parsed record.
    pub(crate) fn check_value(
        &self,
        source: &str,
        topic: &str,
        value: &Value,
    ) -> Option<Violation> {
        let schemas = [self.sources.get(source), self.topics.get(topic)];
        schemas.into_iter().flatten().find_map(|s| s.check(value))
    }
}

impl Schema {
    fn check(&self, value: &Value) -> Option<Violation> {
        if self.validator.is_valid(value) {
            return None;
        }
        let mut details = format!("schema {}:", self.label);
        let mut errors = self.validator.iter_errors(value);
        for (i, e) in errors.by_ref().take(MAX_ERRORS).enumerate() {
            let pointer = e.instance_path().as_str().to_owned();
            let mut message = e.masked().to_string();
            if message.len() > MAX_MESSAGE {
                let cut = (0..=MAX_MESSAGE)
                    .rev()
                    .find(|i| message.is_char_boundary(*i))
                    .unwrap_or(0);
                message.truncate(cut);
                message.push('…');
            }
            let sep = if i == 0 { " " } else { "; " };
            let pointer = if pointer.is_empty() { "/" } else { &pointer };
            details.push_str(&format!("{sep}{pointer}: {message}"));
        }
        if errors.next().is_some() {
            details.push_str("; …");
        }
        Some(Violation {
            schema: self.label.clone(),
            details,
        })
    }
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
pub(crate) fn stored_record(payload: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    match v {
        Value::Object(mut m) if m.len() == 2 && m.contains_key("_metadata") => m.remove("data"),
        v => Some(v),
    }
}

impl crate::StreamManager {
    /// The letters a replay may send: each is checked against the contracts in force
    /// (enforced sources only) for the topic it will go to; one that still fails keeps
    /// its row (`permanent_failure`, with the new details) and counts as failed.
    pub(crate) async fn recheck_for_replay(
        &self,
        letters: &[producer::DeadLetter],
        topic: Option<&str>,
    ) -> Result<(Vec<producer::DeadLetter>, usize)> {
        let contracts = self.shared.contracts();
        if contracts.is_empty() {
            return Ok((letters.to_vec(), 0));
        }
        let (mut pass, mut refused) = (Vec::with_capacity(letters.len()), 0);
        for letter in letters {
            let to = topic.unwrap_or(&letter.source_topic);
            let source = letter.source_id.as_str();
            let violation = if contracts.mode(source) == SchemaMode::Observe {
                None
            } else {
                match stored_record(&letter.payload) {
                    Some(v) => contracts.check_value(source, to, &v),
                    None => contracts.check_text(source, to, &letter.payload),
                }
            };
            match violation {
                None => pass.push(letter.clone()),
                Some(v) => {
                    refused += 1;
                    let store = self.shared.delivery.store();
                    let details = format!("replay refused, still invalid: {}", v.details);
                    store.retry_failed(letter.id, &details, None).await?;
                }
            }
        }
        Ok((pass, refused))
    }
}
