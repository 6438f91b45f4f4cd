//! When and how a source is polled.
//!
//! - `batch`: every `schedule_interval_seconds` (or on a `cron` expression) fetch
//!   everything and emit it in chunks of `batch_size`;
//! - `real_time`: poll every `polling_interval_seconds`, emitting chunks of at most
//!   `max_records_per_poll`;
//! - `continuous_streaming`: poll often into a local buffer, flushed when it holds
//!   `buffer_size` records or every `buffer_flush_interval_seconds`;
//! - any other name: a mode a program registered ([`ModeRegistry::register`]; the
//!   [`IngestionMode`] trait's docs show one written, registered and run).
//!
//! Schedules are fixed-rate on absolute deadlines (no drift) and never overlap: a poll
//! that outlasts its interval is followed at once by the next, the ticks it covered are
//! counted as missed, and the schedule returns to its grid. [`IngestionHandle::stop`]
//! cancels for real, lets the in-flight poll finish within a grace period, and flushes
//! the buffer: nothing fetched is dropped. Every fetch is registered with the source's
//! [`CursorTracker`], so its cursor is committed only once its records are settled.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use std::sync::Arc;
//! use api_client::{CursorTracker, MemoryCursorStore, Registry};
//! use ingestion_modes::{start, Emitted, ModeSpec};
//! use stream_config::{IngestionConfig, IngestionModeKind, SourceConfig};
//!
//! let mut cfg = SourceConfig::new("synthetic");
//! cfg.custom_params.insert("records_per_second".into(), 2.into());
//! let source = Registry::builtin().build("sensors", &cfg).unwrap();
//! let tracker = Arc::new(CursorTracker::load("sensors", Arc::new(MemoryCursorStore::default())).await.unwrap());
//! let spec = ModeSpec::from_config(&IngestionConfig {
//!     mode: IngestionModeKind::RealTime,
//!     polling_interval_seconds: 1.0,
//!     ..IngestionConfig::default()
//! }).unwrap();
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<Emitted>(16);
//! let handle = start("sensors", spec, source, tracker, Arc::new(tx));
//! let first = rx.recv().await.unwrap();
//! assert_eq!(first.records.len(), 2);
//! handle.stop(std::time::Duration::from_secs(1)).await;
//! # }
//! ```

mod metrics;
mod modes;
mod registry;
mod schedule;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_client::Record;
use api_client::{FetchSeq, Rejected};
use async_trait::async_trait;

pub use metrics::describe_metrics;
pub use modes::{start, start_mode, IngestionHandle, ModeContext, ModeSpec, StopReport};
pub use registry::{IngestionMode, ModeFactory, ModeRegistry};
pub use schedule::{parse_cron, Error, Result, Schedule};

/// Records on their way from a source into the pipeline. Each record carries the fetch
/// it came from, to settle that fetch's cursor once the record is safe.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    /// The source.
    pub source_id: Arc<str>,
    /// Records, each with its fetch.
    pub records: Vec<(FetchSeq, Record)>,
    /// Records that could not be decoded, each with its fetch.
    pub rejected: Vec<(FetchSeq, Rejected)>,
}

impl Emitted {
    /// Records plus rejects.
    pub fn len(&self) -> usize {
        self.records.len() + self.rejected.len()
    }

    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where emitted records go. Waiting in `emit` is backpressure on the source.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Hands a batch over; waits while the pipeline is full.
    async fn emit(&self, batch: Emitted) -> Result<(), Error>;

    /// Hands over a batch of a fetch still under way (a large body arriving): the sink
    /// should wait for room rather than let a full pipeline refuse or evict records,
    /// since the source can wait (it stops reading its body meanwhile). By default
    /// [`Sink::emit`].
    async fn emit_while_fetching(&self, batch: Emitted) -> Result<(), Error> {
        self.emit(batch).await
    }

    /// Another worker has claimed the source (its cursor tracker's lease is superseded,
    /// [`api_client::CursorTracker::check_lease`]): the stream makes no more fetches and
    /// tells the sink once, so its owner can stop it. Does nothing by default.
    async fn fenced(&self, source_id: &str, why: &str) {
        let _ = (source_id, why);
    }
}

#[async_trait]
impl Sink for tokio::sync::mpsc::Sender<Emitted> {
    async fn emit(&self, batch: Emitted) -> Result<(), Error> {
        self.send(batch).await.map_err(|_| Error::SinkClosed)
    }
}

/// Counters of one running mode.
#[derive(Debug, Default)]
pub struct ModeStats {
    polls: AtomicU64,
    empty_polls: AtomicU64,
    records: AtomicU64,
    rejected: AtomicU64,
    missed_ticks: AtomicU64,
    errors: AtomicU64,
    buffered: AtomicU64,
    last_error: Mutex<Option<(String, std::time::SystemTime)>>,
    last_success: Mutex<Option<std::time::SystemTime>>,
}

/// A copy of a mode's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModeSnapshot {
    /// Fetches made.
    pub polls: u64,
    /// Fetches that brought nothing new.
    pub empty_polls: u64,
    /// Records emitted.
    pub records: u64,
    /// Undecodable records emitted for the DLQ.
    pub rejected: u64,
    /// Schedule ticks skipped because a poll outlasted them.
    pub missed_ticks: u64,
    /// Failed fetches.
    pub errors: u64,
    /// Records in the local buffer now.
    pub buffered: u64,
    /// The last fetch error.
    pub last_error: Option<String>,
    /// When the last fetch error happened.
    pub last_error_at: Option<std::time::SystemTime>,
    /// When a fetch last succeeded.
    pub last_success: Option<std::time::SystemTime>,
}

impl ModeSnapshot {
    /// The last fetch failed (no success since the last error).
    pub fn failing(&self) -> bool {
        match (self.last_error_at, self.last_success) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

impl ModeStats {
    /// When a fetch last succeeded (what a snapshot says, without the rest of it).
    pub fn last_success(&self) -> Option<std::time::SystemTime> {
        *self.last_success.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot.
    pub fn snapshot(&self) -> ModeSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ModeSnapshot {
            polls: get(&self.polls),
            empty_polls: get(&self.empty_polls),
            records: get(&self.records),
            rejected: get(&self.rejected),
            missed_ticks: get(&self.missed_ticks),
            errors: get(&self.errors),
            buffered: get(&self.buffered),
            last_error_at: last_error.as_ref().map(|e| e.1),
            last_error: last_error.map(|e| e.0),
            last_success: self.last_success(),
        }
    }
}

/// Waits longer than any test or schedule needs: "never" for tokio timers.
pub(crate) const FAR: Duration = Duration::from_secs(86_400 * 365);
