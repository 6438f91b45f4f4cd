//! Streams: one per configured source, each an ingestion mode feeding the pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{CursorTracker, Source};
use ingestion_modes::{IngestionHandle, ModeSnapshot};
use serde::Serialize;
use stream_config::SourceConfig;

use crate::pipeline::{SourceCtx, StreamCounters, StreamSink};
use crate::{component, Error, Result, StreamManager};

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
}

pub(crate) struct Stream {
    pub(crate) config: SourceConfig,
    pub(crate) status: StreamStatus,
    source: Arc<dyn Source>,
    pub(crate) ctx: Arc<SourceCtx>,
    handle: Option<IngestionHandle>,
    last: ModeSnapshot,
    started_at: Option<Instant>,
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

    pub(crate) async fn halt(&mut self, grace: Duration) {
        if let Some(h) = self.handle.take() {
            self.last = h.stats();
            h.stop(grace).await;
        }
        self.started_at = None;
    }

    fn info(&self, id: &str) -> StreamInfo {
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
        StreamInfo {
            id: id.to_owned(),
            source_type: self.config.source_type.clone(),
            status: self.status,
            mode: self.config.ingestion.mode.name().to_owned(),
            priority: crate::convert::priority(self.config.priority)
                .as_str()
                .to_owned(),
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
        config: SourceConfig,
        source: Arc<dyn Source>,
        run: bool,
    ) -> Result<()> {
        let tracker = CursorTracker::load(id, self.cursors.clone())
            .await
            .map_err(component(format!("cursor store of {id}")))?;
        let ctx = Arc::new(SourceCtx {
            id: id.into(),
            source_type: config.source_type.as_str().into(),
            id_header: bytes::Bytes::copy_from_slice(id.as_bytes()),
            type_header: bytes::Bytes::copy_from_slice(config.source_type.as_bytes()),
            priority: crate::convert::priority(config.priority),
            tracker: Arc::new(tracker),
            counters: Arc::new(StreamCounters::default()),
            share: self.shared.per_source.share(&Arc::from(id)),
            fenced: None,
        });
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
            config,
            source,
            ctx,
            handle: None,
            last: ModeSnapshot::default(),
            started_at: None,
        };
        if run {
            self.launch(id, &mut stream)?;
        }
        self.streams.lock().await.insert(id.to_owned(), stream);
        // A source added at runtime whose slot this worker already owns starts now.
        if let Some(c) = self.cluster.as_ref().filter(|_| clustered) {
            let slot = c.settings.slot_of(id);
            if c.owns(slot) {
                self.take_slots(&[slot]).await;
            }
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
        let mode = (self.modes.build(id, &stream.config.ingestion))
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
        let removed = self.streams.lock().await.remove(id);
        self.shared.per_source.forget(id);
        if let Some(mut s) = removed {
            s.halt(Duration::from_secs(10)).await;
        }
    }

    /// Every stream with its status and figures.
    pub async fn list_streams(&self) -> Vec<StreamInfo> {
        let streams = self.streams.lock().await;
        self.seen(&streams)
    }

    /// The streams for a probe, never waiting on the streams lock: as they are when it is
    /// free, else as last seen (a stop holds it for up to its 10 s grace, and a liveness
    /// or readiness probe must not wait that long).
    pub(crate) fn streams_for_probe(&self) -> Vec<StreamInfo> {
        match self.streams.try_lock() {
            Ok(streams) => self.seen(&streams),
            Err(_) => self
                .streams_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Every stream's figures, kept as the snapshot probes answer from.
    fn seen(&self, streams: &BTreeMap<String, Stream>) -> Vec<StreamInfo> {
        let list: Vec<StreamInfo> = streams.iter().map(|(id, s)| s.info(id)).collect();
        *self.streams_seen.lock().unwrap_or_else(|e| e.into_inner()) = list.clone();
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

    async fn transition(&self, id: &str, to: StreamStatus) -> Result<StreamInfo> {
        let mut streams = self.streams.lock().await;
        // Probes answer from this while the lock is held (a stop takes seconds).
        self.seen(&streams);
        let stream = streams
            .get_mut(id)
            .ok_or_else(|| Error::UnknownStream(id.to_owned()))?;
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
                stream.halt(Duration::from_secs(10)).await;
                stream.status = to;
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
        Ok(stream.info(id))
    }

    /// Starts a stopped or disabled stream.
    pub async fn start_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Running).await
    }

    /// Stops a stream (what it holds is flushed into the pipeline first).
    pub async fn stop_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Stopped).await
    }

    /// Pauses a running stream.
    pub async fn pause_stream(&self, id: &str) -> Result<StreamInfo> {
        self.transition(id, StreamStatus::Paused).await
    }

    /// Resumes a paused stream from its cursor.
    pub async fn resume_stream(&self, id: &str) -> Result<StreamInfo> {
        let status = self.stream(id).await?.status;
        if status != StreamStatus::Paused {
            return Err(Error::State {
                id: id.to_owned(),
                status,
                what: "only a paused stream can be resumed",
            });
        }
        self.transition(id, StreamStatus::Running).await
    }
}
