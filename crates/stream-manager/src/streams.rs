//! Streams: one per configured source, each an ingestion mode feeding the pipeline.

use api_client::CursorSummary as _;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{CursorTracker, Source};
use ingestion_modes::{IngestionHandle, ModeSnapshot};
use serde::Serialize;
use stream_config::SourceConfig;

use crate::{component, Error, Result, StreamManager};
use record_path::{SourceCtx, StreamSink};

/// How long a stopping, pausing or removed stream's ingestion has to flush what it holds.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Lifecycle of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    /// Polling.
    Running,
    /// Paused by an operator; resumes where it left off.
    Paused,
    /// Stopped by an operator.
    Stopped,
    /// `enabled: false` in the configuration.
    Disabled,
    /// Cluster mode: its slot is not this worker's (another worker runs it, or none yet).
    Unassigned,
}

impl StreamStatus {
    /// Every status, in the order a listing shows them.
    pub const ALL: [StreamStatus; 5] = [
        StreamStatus::Running,
        StreamStatus::Paused,
        StreamStatus::Stopped,
        StreamStatus::Disabled,
        StreamStatus::Unassigned,
    ];

    /// Its name, as serialized (`running`, `paused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Running => "running",
            StreamStatus::Paused => "paused",
            StreamStatus::Stopped => "stopped",
            StreamStatus::Disabled => "disabled",
            StreamStatus::Unassigned => "unassigned",
        }
    }
}

impl std::str::FromStr for StreamStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}`; use running, paused, stopped, disabled or unassigned"
                )
            })
    }
}

/// What the admin API shows of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    /// Source id.
    pub id: String,
    /// Connector type.
    pub source_type: String,
    /// Status.
    pub status: StreamStatus,
    /// Ingestion mode.
    pub mode: String,
    /// Queue priority of its records.
    pub priority: String,
    /// Records acknowledged by Kafka.
    pub records_processed: u64,
    /// Records dead-lettered.
    pub records_dead_lettered: u64,
    /// Fetches made since the stream last started.
    pub polls: u64,
    /// Failed fetches since the stream last started.
    pub errors: u64,
    /// Schedule ticks skipped by slow polls.
    pub missed_ticks: u64,
    /// The last cursor commit error while it lasts, else the last fetch error.
    pub last_error: Option<String>,
    /// The last fetch failed, or the last cursor commit did.
    pub failing: bool,
    /// The last cursor commit failed: the fetch state is not advancing.
    pub commit_failing: bool,
    /// Last successful delivery, ms since the epoch.
    pub last_delivery_ms: Option<i64>,
    /// Seconds since the stream last started (0 when not running).
    pub uptime_seconds: u64,
    /// The last committed cursor (for an HTTP source, its incremental value and resume
    /// point; validators and the dedup window are committed with it but not shown).
    pub cursor: Option<String>,
    /// Each upstream endpoint: URL (secrets redacted), last status, failures in a row.
    pub parts: Vec<api_client::PartStatus>,
    /// The source's own progress report (`Source::progress`; e.g. a NOAA state sweep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<serde_json::Value>,
    /// Records that failed their schema (data contracts; both modes).
    pub schema_violations: u64,
    /// The last of them, while the stream lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_schema_violation: Option<crate::LastViolation>,
    /// The newest record's own event time (RFC 3339), or the last successful fetch
    /// when the source's records carry none (`freshness_basis` says which).
    pub newest_event_at: Option<String>,
    /// Seconds since `newest_event_at` (0 when it lies in the future).
    pub freshness_seconds: Option<f64>,
    /// `event_time` or `last_fetch`.
    pub freshness_basis: Option<&'static str>,
    /// When the last fetch ended (RFC 3339), successful or not; null before the first.
    pub last_poll_at: Option<String>,
    /// How the last fetch ended: `ok` or `error`.
    pub last_poll_outcome: Option<&'static str>,
}

pub(crate) struct Stream {
    /// What the stream keeps of its source's configuration (the whole of it stays in
    /// the manager's one copy: at 10,000 sources a copy per stream was megabytes).
    ingestion: stream_config::IngestionConfig,
    priority: stream_config::Priority,
    pub(crate) status: StreamStatus,
    source: Arc<dyn Source>,
    pub(crate) ctx: Arc<SourceCtx>,
    handle: Option<IngestionHandle>,
    last: ModeSnapshot,
    started_at: Option<Instant>,
    /// Held by an operation on this stream (start, stop, pause, resume, removal) from
    /// its decision until its ingestion has stopped: the streams lock is released while
    /// a stop waits out its grace, and a start of the same stream waits here instead of
    /// running a second ingestion beside the one still stopping.
    pub(crate) op: Arc<tokio::sync::Mutex<()>>,
}

impl Stream {
    /// Stops polling (flushing what the mode holds into the pipeline).
    /// Takes the running ingestion (to stop it elsewhere), keeping its last figures.
    pub(crate) fn take_handle(&mut self) -> Option<IngestionHandle> {
        let h = self.handle.take()?;
        self.last = h.stats();
        self.started_at = None;
        Some(h)
    }

    /// Seconds since the stream's newest record (`StreamInfo::freshness_seconds`), without
    /// building the rest of its figures: a scrape asks it of every stream.
    pub(crate) fn freshness_seconds(&self) -> Option<f64> {
        let last_success = match &self.handle {
            Some(h) => h.last_success(),
            None => self.last.last_success,
        };
        let fresh = (self.ctx.freshness).view(last_success, std::time::SystemTime::now());
        fresh.map(|f| f.age.as_secs_f64())
    }

    pub(crate) fn info(&self, id: &str) -> StreamInfo {
        let stats = self
            .handle
            .as_ref()
            .map_or_else(|| self.last.clone(), IngestionHandle::stats);
        let last = self.ctx.counters.last_delivery_ms.load(Ordering::Relaxed);
        // A state that cannot be committed fails the source as loudly as a fetch.
        let commit_error = self
            .ctx
            .tracker
            .commit_error()
            .filter(|_| self.status == StreamStatus::Running)
            .map(|e| format!("cannot commit fetch state: {e}"));
        let fresh = self
            .ctx
            .freshness
            .view(stats.last_success, std::time::SystemTime::now());
        let last_poll = match (stats.last_success, stats.last_error_at) {
            (Some(ok), Some(err)) if err > ok => Some((err, "error")),
            (Some(ok), _) => Some((ok, "ok")),
            (None, Some(err)) => Some((err, "error")),
            (None, None) => None,
        };
        StreamInfo {
            last_poll_at: last_poll.map(|(t, _)| api_client::rfc3339(t)),
            last_poll_outcome: last_poll.map(|(_, o)| o),
            newest_event_at: fresh.as_ref().map(|f| api_client::rfc3339(f.newest_at)),
            freshness_seconds: fresh.as_ref().map(|f| f.age.as_secs_f64()),
            freshness_basis: fresh.as_ref().map(|f| f.basis),
            id: id.to_owned(),
            source_type: self.ctx.source_type.to_string(),
            status: self.status,
            mode: self.ingestion.mode.name().to_owned(),
            priority: crate::convert::priority(self.priority).as_str().to_owned(),
            records_processed: self.ctx.counters.delivered.load(Ordering::Relaxed),
            records_dead_lettered: self.ctx.counters.dead_lettered.load(Ordering::Relaxed),
            polls: stats.polls,
            errors: stats.errors,
            missed_ticks: stats.missed_ticks,
            failing: self.status == StreamStatus::Running && stats.failing()
                || commit_error.is_some(),
            commit_failing: commit_error.is_some(),
            last_error: commit_error.or(stats.last_error),
            last_delivery_ms: (last > 0).then_some(last),
            uptime_seconds: self.started_at.map_or(0, |t| t.elapsed().as_secs()),
            cursor: self.ctx.tracker.committed().map(|c| c.summary()),
            parts: self.source.parts(),
            progress: self.source.progress(),
            schema_violations: self.ctx.counters.schema_violations.load(Ordering::Relaxed),
            last_schema_violation: (self.ctx.counters.last_violation.lock())
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl StreamManager {
    /// Builds source `id` with the registry (connector parameters checked).
    pub(crate) fn build_source(&self, id: &str, config: &SourceConfig) -> Result<Arc<dyn Source>> {
        self.registry
            .build(id, config)
            .map_err(component(format!("source {id}")))
    }

    pub(crate) async fn add_stream(
        &self,
        id: &str,
        config: &SourceConfig,
        source: Arc<dyn Source>,
        run: bool,
    ) -> Result<()> {
        let tracker = CursorTracker::load(id, self.cursors.clone())
            .await
            .map_err(component(format!("cursor store of {id}")))?;
        let freshness = api_client::Freshness::new(
            api_client::EventTime::for_source(id, &config.into())
                .map_err(component(format!("source {id}")))?,
        );
        let ctx = Arc::new(SourceCtx::new(
            self.shared(),
            id,
            &config.source_type,
            crate::convert::priority(config.priority),
            Arc::new(tracker),
            freshness,
        ));
        // In a worker group an enabled source waits for its slot to be assigned.
        let clustered = run && self.cluster.is_some();
        let run = run && !clustered;
        let mut stream = Stream {
            status: if run {
                StreamStatus::Running
            } else if clustered {
                StreamStatus::Unassigned
            } else {
                StreamStatus::Disabled
            },
            ingestion: config.ingestion.clone(),
            priority: config.priority,
            source,
            ctx,
            handle: None,
            last: ModeSnapshot::default(),
            started_at: None,
            op: Arc::default(),
        };
        if run {
            self.launch(id, &mut stream)?;
        }
        self.streams.lock().await.insert(id.to_owned(), stream);
        // A source added at runtime whose slot this worker already owns starts now.
        if let Some(c) = self.cluster.as_ref().filter(|_| clustered) {
            c.source_added(id).await;
        }
        Ok(())
    }

    pub(crate) fn launch(&self, id: &str, stream: &mut Stream) -> Result<()> {
        // A source handed over to this worker starts at once (no start jitter).
        let jitter = if self.cluster.is_some() {
            Duration::ZERO
        } else {
            self.start_jitter
        };
        let mode = (self.modes.build(id, &stream.ingestion))
            .map_err(component(format!("ingestion of sources.{id}")))?;
        let sink = Arc::new(StreamSink {
            ctx: stream.ctx.clone(),
            shared: self.shared().clone(),
        });
        stream.handle = Some(ingestion_modes::start_mode(
            id,
            mode,
            stream.source.clone(),
            stream.ctx.tracker.clone(),
            sink,
            jitter,
        ));
        stream.started_at = Some(Instant::now());
        stream.status = StreamStatus::Running;
        Ok(())
    }

    pub(crate) async fn remove_stream(&self, id: &str) {
        // After an operation in progress on it (a stop still in its grace) has finished.
        let (_op, removed) = loop {
            let Some(op) = self.op_lock(id).await else {
                return;
            };
            let guard = op.clone().lock_owned().await;
            let mut streams = self.streams.lock().await;
            match streams.get(id) {
                Some(s) if Arc::ptr_eq(&s.op, &op) => break (guard, streams.remove(id)),
                Some(_) => continue, // removed and added again meanwhile
                None => return,
            }
        };
        self.shared.per_source.forget(id);
        if let Some(h) = removed.and_then(|mut s| s.take_handle()) {
            h.stop(STOP_GRACE).await;
        }
    }

    /// The lock serializing operations on stream `id`.
    async fn op_lock(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.streams.lock().await.get(id).map(|s| s.op.clone())
    }

    /// Every stream with its status and figures.
    pub async fn list_streams(&self) -> Vec<StreamInfo> {
        let streams = self.streams.lock().await;
        Vec::clone(&self.seen(&streams))
    }

    /// The streams for a probe, never waiting on the streams lock: as they are when it is
    /// free, else as last seen (a slot hand-over in a worker group holds it across
    /// fetch-state claims in the store, and a liveness or readiness probe must not wait
    /// on the store).
    pub(crate) fn streams_for_probe(&self) -> Arc<Vec<StreamInfo>> {
        match self.streams.try_lock() {
            Ok(streams) => self.seen(&streams),
            Err(_) => self
                .streams_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Every stream's figures, kept (shared, not copied) as the snapshot probes answer
    /// from.
    fn seen(&self, streams: &BTreeMap<String, Stream>) -> Arc<Vec<StreamInfo>> {
        let list = Arc::new(streams.iter().map(|(id, s)| s.info(id)).collect());
        *self.streams_seen.lock().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&list);
        list
    }

    /// One stream.
    pub async fn stream(&self, id: &str) -> Result<StreamInfo> {
        self.streams
            .lock()
            .await
            .get(id)
            .map(|s| s.info(id))
            .ok_or_else(|| Error::UnknownStream(id.to_owned()))
    }

    /// Moves stream `id` to `to` (from `Paused` only when `resume`). The streams lock is
    /// held only to decide and to take the running ingestion, never while it stops (up to
    /// its grace): other streams, listings and probes do not wait for a stop. Operations
    /// on the same stream run one after the other (its `op` lock), so a start waits for a
    /// stop in progress to finish.
    async fn transition(&self, id: &str, to: StreamStatus, resume: bool) -> Result<StreamInfo> {
        let unknown = || Error::UnknownStream(id.to_owned());
        // Held until the ingestion taken out below has stopped.
        let (_op, stopping, info) = loop {
            let op = self.op_lock(id).await.ok_or_else(unknown)?;
            let guard = op.clone().lock_owned().await;
            let mut streams = self.streams.lock().await;
            // Removed while this waited for the operation before it.
            let stream = streams.get_mut(id).ok_or_else(unknown)?;
            if !Arc::ptr_eq(&stream.op, &op) {
                continue; // removed and added again (a reload) meanwhile: take its new lock
            }
            let stopping = self.decide(id, stream, to, resume)?;
            break (guard, stopping, stream.info(id));
        };
        let Some(h) = stopping else {
            return Ok(info);
        };
        h.stop(STOP_GRACE).await;
        // As it is now (or as it was when the stop began, had a reload removed it since).
        Ok(self.stream(id).await.unwrap_or(info))
    }

    /// The state change of [`StreamManager::transition`], under the streams lock: the
    /// ingestion to stop, if any (the status is already the new one).
    fn decide(
        &self,
        id: &str,
        stream: &mut Stream,
        to: StreamStatus,
        resume: bool,
    ) -> Result<Option<IngestionHandle>> {
        if resume && stream.status != StreamStatus::Paused {
            return Err(Error::State {
                id: id.to_owned(),
                status: stream.status,
                what: "only a paused stream can be resumed",
            });
        }
        match (stream.status, to) {
            (StreamStatus::Unassigned, _) => {
                return Err(Error::State {
                    id: id.to_owned(),
                    status: stream.status,
                    what: "in a worker group a source runs where the group assigns its slot; another worker runs it or will",
                });
            }
            (StreamStatus::Running, StreamStatus::Running) => {}
            (StreamStatus::Paused, StreamStatus::Paused) => {}
            (StreamStatus::Running, StreamStatus::Paused | StreamStatus::Stopped) => {
                stream.status = to;
                return Ok(stream.take_handle());
            }
            (StreamStatus::Stopped | StreamStatus::Disabled, StreamStatus::Paused) => {
                return Err(Error::State {
                    id: id.to_owned(),
                    status: stream.status,
                    what: "only a running stream can be paused",
                });
            }
            (_, StreamStatus::Running) => self.launch(id, stream)?,
            (_, StreamStatus::Stopped | StreamStatus::Disabled | StreamStatus::Unassigned) => {
                stream.status = to
            }
        }
        Ok(None)
    }

    /// Starts a stopped or disabled stream.
    pub async fn start_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Running, false).await
    }

    /// Stops a stream (what it holds is flushed into the pipeline first).
    pub async fn stop_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Stopped, false).await
    }

    /// Pauses a running stream.
    pub async fn pause_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Paused, false).await
    }

    /// Resumes a paused stream from its cursor.
    pub async fn resume_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Running, true).await
    }
}
