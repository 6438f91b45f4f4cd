//! The three built-in modes as one scheduling loop with mode-specific emission, and the
//! [`ModeContext`] every mode (built-in or registered) polls and emits through.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use api_client::Record;
use api_client::{CursorTracker, FetchSeq, Rejected, Source};
use stream_config::{IngestionConfig, IngestionModeKind};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::schedule::{Error, Grid, Schedule};
use crate::{Emitted, IngestionMode, ModeSnapshot, ModeStats, Sink, FAR};

mod fetch;
use fetch::Flush;

/// A mode, ready to start: the factory's output from an `ingestion` config section.
#[derive(Debug, Clone)]
pub struct ModeSpec {
    /// Which mode.
    pub kind: IngestionModeKind,
    /// When polls happen.
    pub schedule: Schedule,
    /// Most records per emitted chunk.
    pub chunk_size: usize,
    /// `continuous_streaming`: flush at this many buffered records.
    pub buffer_size: usize,
    /// `continuous_streaming`: flush at least this often.
    pub flush_interval: Duration,
    /// The first poll waits a random time up to this, so many sources do not fire at once.
    pub start_jitter: Duration,
}

fn seconds(key: &'static str, value: f64) -> Result<Duration, Error> {
    // `validate` bounds these to a year; beyond `MAX_SECONDS` (a library user's own
    // settings) it is an error here, not a panic (`Duration::from_secs_f64(1e20)`).
    if value.is_finite() && value > 0.0 && value <= stream_config::MAX_SECONDS {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(Error::Interval { key, value })
    }
}

impl ModeSpec {
    /// The mode an `ingestion` section describes.
    pub fn from_config(cfg: &IngestionConfig) -> Result<Self, Error> {
        let (schedule, chunk_size) = match &cfg.mode {
            IngestionModeKind::Batch => {
                let schedule = match &cfg.cron {
                    Some(expr) => Schedule::cron(expr)?,
                    None => Schedule::Every(seconds(
                        "schedule_interval_seconds",
                        cfg.schedule_interval_seconds as f64,
                    )?),
                };
                (schedule, cfg.batch_size)
            }
            IngestionModeKind::RealTime => (
                Schedule::Every(seconds(
                    "polling_interval_seconds",
                    cfg.polling_interval_seconds,
                )?),
                cfg.max_records_per_poll,
            ),
            IngestionModeKind::ContinuousStreaming => (
                Schedule::Every(seconds(
                    "polling_interval_seconds",
                    cfg.polling_interval_seconds,
                )?),
                cfg.buffer_size,
            ),
            IngestionModeKind::Custom(name) => {
                return Err(Error::UnknownMode {
                    name: name.clone(),
                    known: crate::ModeRegistry::builtin().names().join(", "),
                })
            }
        };
        Ok(Self {
            kind: cfg.mode.clone(),
            schedule,
            chunk_size: chunk_size.max(1),
            buffer_size: cfg.buffer_size.max(1),
            flush_interval: seconds(
                "buffer_flush_interval_seconds",
                cfg.buffer_flush_interval_seconds,
            )?,
            start_jitter: Duration::ZERO,
        })
    }

    /// With a start jitter.
    pub fn with_start_jitter(mut self, jitter: Duration) -> Self {
        self.start_jitter = jitter;
        self
    }
}

#[async_trait::async_trait]
impl IngestionMode for ModeSpec {
    fn name(&self) -> &str {
        self.kind.name()
    }

    async fn run(&self, ctx: &ModeContext) -> StopReport {
        ctx.run_builtin(self).await
    }
}

/// What `stop` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopReport {
    /// The in-flight poll outlasted the grace period and was abandoned (its records were
    /// not emitted, so its cursor is not committed: they are fetched again next time).
    pub abandoned_poll: bool,
    /// Records flushed from the buffer on the way out.
    pub flushed: usize,
}

/// A running mode.
#[derive(Debug)]
pub struct IngestionHandle {
    cancel: CancellationToken,
    grace: tokio::sync::watch::Sender<Duration>,
    task: JoinHandle<StopReport>,
    stats: Arc<ModeStats>,
}

impl IngestionHandle {
    /// Counters so far.
    pub fn stats(&self) -> ModeSnapshot {
        self.stats.snapshot()
    }

    /// When a fetch last succeeded (`stats().last_success`, without the rest).
    pub fn last_success(&self) -> Option<std::time::SystemTime> {
        self.stats.last_success()
    }

    /// False once the loop ended (stopped, or the sink closed).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops: no new poll starts; the in-flight one may finish within `grace`; the
    /// buffer is flushed. Returns once the loop has ended.
    pub async fn stop(self, grace: Duration) -> StopReport {
        let _ = self.grace.send(grace);
        self.cancel.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Starts polling `source` per `spec` (a built-in mode), emitting into `sink`.
pub fn start(
    source_id: &str,
    spec: ModeSpec,
    source: Arc<dyn Source>,
    tracker: Arc<CursorTracker>,
    sink: Arc<dyn Sink>,
) -> IngestionHandle {
    let jitter = spec.start_jitter;
    start_mode(source_id, Arc::new(spec), source, tracker, sink, jitter)
}

/// Starts `mode` (built-in or registered, see [`crate::ModeRegistry`]) polling `source`,
/// emitting into `sink`; its first poll may wait a random time up to `start_jitter`
/// (built-in modes do; a registered one reads [`ModeContext::start_jitter`]).
pub fn start_mode(
    source_id: &str,
    mode: Arc<dyn IngestionMode>,
    source: Arc<dyn Source>,
    tracker: Arc<CursorTracker>,
    sink: Arc<dyn Sink>,
    start_jitter: Duration,
) -> IngestionHandle {
    let cancel = CancellationToken::new();
    let (grace_tx, grace_rx) = tokio::sync::watch::channel(Duration::from_secs(30));
    let stats = Arc::new(ModeStats::default());
    let ctx = ModeContext {
        consecutive_panics: std::sync::atomic::AtomicU32::new(0),
        fenced: std::sync::atomic::AtomicBool::new(false),
        abandoned: std::sync::atomic::AtomicBool::new(false),
        polling: tokio::sync::Mutex::new(()),
        source_id: source_id.into(),
        label: mode.name().to_owned(),
        meters: crate::metrics::SourceMeters::new(source_id.into(), mode.name().to_owned()),
        start_jitter,
        source,
        tracker,
        sink,
        cancel: cancel.clone(),
        grace: grace_rx,
        stats: stats.clone(),
    };
    let task = tokio::spawn(async move {
        let mut report = mode.run(&ctx).await;
        report.abandoned_poll |= ctx.abandoned.load(Ordering::Relaxed);
        report
    });
    IngestionHandle {
        cancel,
        grace: grace_tx,
        task,
        stats,
    }
}

/// A panic's message.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What a running mode polls and emits through: one fetch of the source at a time
/// (registered with its cursor tracker, counted, a panicking connector caught), the
/// sink, and the stop signal. A mode emits every record [`poll`](Self::poll) returns
/// (a fetch's cursor is committed only once all its records are settled) and returns
/// from [`IngestionMode::run`] soon after [`is_stopping`](Self::is_stopping).
pub struct ModeContext {
    consecutive_panics: std::sync::atomic::AtomicU32,
    /// Set once the source's lease was found superseded (the sink is told once).
    fenced: std::sync::atomic::AtomicBool,
    /// Set when a poll outlasted the stop's grace period and was abandoned.
    abandoned: std::sync::atomic::AtomicBool,
    /// Held by a poll: polls of one source never overlap, whatever a mode does.
    polling: tokio::sync::Mutex<()>,
    source_id: Arc<str>,
    /// The mode's name (metric label).
    label: String,
    start_jitter: Duration,
    source: Arc<dyn Source>,
    tracker: Arc<CursorTracker>,
    sink: Arc<dyn Sink>,
    cancel: CancellationToken,
    grace: tokio::sync::watch::Receiver<Duration>,
    stats: Arc<ModeStats>,
    /// The source's labelled series, looked up once.
    meters: crate::metrics::SourceMeters,
}

type Polled = (Vec<(FetchSeq, Record)>, Vec<(FetchSeq, Rejected)>);

impl std::fmt::Debug for ModeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeContext")
            .field("source_id", &self.source_id)
            .field("mode", &self.label)
            .finish_non_exhaustive()
    }
}

impl ModeContext {
    /// The source's id.
    pub fn source_id(&self) -> &str {
        &self.source_id
    }

    /// How long the first poll may wait (a random part of it), so many sources do not
    /// fire at once.
    pub fn start_jitter(&self) -> Duration {
        self.start_jitter
    }

    /// True once the stream is asked to stop: make no new poll, emit what is held, return.
    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Waits `d`; false when the stream was asked to stop meanwhile.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// One fetch of the source: its records and rejects (each with its fetch, to settle
    /// its cursor), or `None` when it failed (counted, shown as the stream's last error),
    /// brought nothing, or the stream is stopping (an in-flight fetch may finish within
    /// the stop's grace period; one that outlasts it is abandoned: its records are
    /// fetched again next time). Polls never overlap: a second waits for the first.
    /// Everything the fetch brings is held until it ends; the built-in modes instead
    /// emit a large fetch's records while its body is still arriving.
    pub async fn poll(&self) -> Option<Emitted> {
        let mut held: Polled = (Vec::new(), Vec::new());
        // Without `flush_at` nothing is emitted here, so the sink cannot fail. A fetch
        // that failed half way still returns what it handed on: it must be settled.
        let _ = self.poll_into(&mut held, Flush::Never, 1).await;
        match held.0.len() + held.1.len() {
            n if n > 0 => Some(Emitted {
                source_id: self.source_id.clone(),
                records: held.0,
                rejected: held.1,
            }),
            _ => None,
        }
    }

    /// One fetch whose records are added to `held` as they arrive and emitted in chunks
    /// of `chunk_size` as `flush` says, so a large body passes in bounded memory (the source waits, and
    /// stops reading, while the sink does). `Ok(false)`: the fetch failed, or the stream
    /// is stopping; `Err`: the sink is gone.
    async fn poll_into(
        &self,
        held: &mut Polled,
        flush: Flush,
        chunk_size: usize,
    ) -> Result<bool, crate::Error> {
        let _one_at_a_time = self.polling.lock().await;
        if self.is_stopping() || !self.may_fetch().await {
            return Ok(false);
        }
        let seq = self.tracker.begin();
        let polled = {
            let poll = self.fetch_once(seq, held, flush, chunk_size);
            tokio::pin!(poll);
            tokio::select! {
                r = &mut poll => r,
                _ = self.cancel.cancelled() => {
                    let grace = *self.grace.borrow();
                    match tokio::time::timeout(grace, &mut poll).await {
                        Ok(r) => r,
                        Err(_) => {
                            self.abandoned.store(true, Ordering::Relaxed);
                            Ok(None)
                        }
                    }
                }
            }
        };
        // Records handed on so far are settled whatever happened; the state advances
        // only with a fetch that ended.
        let cursor = match &polled {
            Ok(Some(cursor)) => cursor.clone(),
            _ => None,
        };
        if let Err(e) = self.tracker.end(seq, cursor).await {
            self.failed(&api_client::Error::Io(e.to_string()));
            return polled.map(|_| false);
        }
        let ended = polled?.is_some();
        self.emit_held(held, flush, chunk_size, false).await?;
        Ok(ended)
    }

    /// Hands `batch` to the pipeline; waits while it is full (backpressure). An error
    /// means the pipeline is gone: the mode should return.
    pub async fn emit(&self, batch: Emitted) -> Result<(), crate::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        self.sink.emit(batch).await
    }

    /// The built-in modes' loop.
    async fn run_builtin(&self, spec: &ModeSpec) -> StopReport {
        let mut report = StopReport::default();
        let streaming = spec.kind == IngestionModeKind::ContinuousStreaming;
        let jitter = if self.start_jitter.is_zero() {
            Duration::ZERO
        } else {
            self.start_jitter.mul_f64(rand::random::<f64>())
        };
        let mut grid = match &spec.schedule {
            Schedule::Every(period) => Some(Grid::new(Instant::now() + jitter, *period)),
            Schedule::Cron(_) => None,
        };
        let mut buffer: Polled = (Vec::new(), Vec::new());
        let mut flush_at = Instant::now() + if streaming { spec.flush_interval } else { FAR };
        loop {
            let due = match (&grid, &spec.schedule) {
                (Some(g), _) => g.due(),
                (None, Schedule::Cron(c)) => {
                    Instant::now() + Schedule::until_next_cron(c, chrono::Utc::now()).unwrap_or(FAR)
                }
                (None, Schedule::Every(_)) => unreachable!("grid exists for fixed-rate schedules"),
            };
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = sleep_until(flush_at), if streaming => {
                    if self.flush(&mut buffer, spec.chunk_size).await.is_err() {
                        break;
                    }
                    flush_at = Instant::now() + spec.flush_interval;
                    continue;
                }
                _ = sleep_until(due) => {}
            }
            // How late this poll starts against its schedule (a busy runtime, a poll
            // that outlasted its interval): one series for all sources.
            self.meters
                .lateness()
                .record(Instant::now().saturating_duration_since(due).as_secs_f64());
            // Batch and real-time emit whole chunks while the fetch is under way and the
            // rest after it; streaming flushes its buffer whenever it is full.
            let flush = if streaming {
                Flush::All(spec.buffer_size)
            } else {
                Flush::WholeChunks
            };
            // Boxed: a source between polls (nearly always, at thousands of sources) then
            // holds its schedule and buffer, not the poll's kilobyte and more of state.
            let polled = Box::pin(self.poll_into(&mut buffer, flush, spec.chunk_size)).await;
            if polled.is_err() {
                break;
            }
            if self.abandoned.load(Ordering::Relaxed) {
                report.abandoned_poll = true;
                break;
            }
            if streaming {
                self.stats
                    .buffered
                    .store(buffer.0.len() as u64, Ordering::Relaxed);
                self.meters.buffer_records(buffer.0.len());
            } else if self.flush(&mut buffer, spec.chunk_size).await.is_err() {
                break;
            }
            if self.cancel.is_cancelled() {
                break;
            }
            if let Some(g) = &mut grid {
                let missed = g.advance(Instant::now());
                if missed > 0 {
                    self.stats.missed_ticks.fetch_add(missed, Ordering::Relaxed);
                    self.meters.missed_ticks().increment(missed);
                }
            }
        }
        let held = buffer.0.len() + buffer.1.len();
        if held > 0 && self.flush(&mut buffer, spec.chunk_size).await.is_ok() {
            report.flushed = held;
        }
        report
    }

    fn failed(&self, e: &api_client::Error) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.meters.errors().increment(1);
        tracing::warn!(source = %self.source_id, error = e as &dyn std::error::Error, "fetch failed");
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            Some((e.to_string(), std::time::SystemTime::now()));
    }

    async fn emit_chunks(
        &self,
        records: Vec<(FetchSeq, Record)>,
        rejected: Vec<(FetchSeq, Rejected)>,
        chunk_size: usize,
        fetching: bool,
    ) -> Result<(), crate::Error> {
        let mut rejected = Some(rejected);
        let mut rest = records.into_iter().peekable();
        loop {
            let chunk: Vec<_> = rest.by_ref().take(chunk_size.max(1)).collect();
            let rej = rejected.take().unwrap_or_default();
            if chunk.is_empty() && rej.is_empty() {
                return Ok(());
            }
            let batch = Emitted {
                source_id: self.source_id.clone(),
                records: chunk,
                rejected: rej,
            };
            if fetching {
                self.sink.emit_while_fetching(batch).await?;
            } else {
                self.sink.emit(batch).await?;
            }
            if rest.peek().is_none() {
                return Ok(());
            }
        }
    }

    async fn flush(&self, buffer: &mut Polled, chunk_size: usize) -> Result<(), crate::Error> {
        let (records, rejected) = std::mem::take(buffer);
        self.stats.buffered.store(0, Ordering::Relaxed);
        self.meters.buffer_records(0);
        self.emit_chunks(records, rejected, chunk_size, false).await
    }
}
