//! `StreamManager`: the running pipeline's state, and its shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use api_client::{CursorStore, Registry};
use producer::Delivery;
use queue::{Priority, PriorityQueue};
use stream_config::{Loader, StreamConfig};
use throttling::ThrottleGroup;
use tokio::task::JoinHandle;
use topic_resolver::{Predicate, Resolver};

use crate::builder::Builder;
use crate::pipeline::Item;
use crate::streams::Stream;

/// State shared by the manager's tasks.
pub(crate) struct Shared {
    pub(crate) config: RwLock<Arc<StreamConfig>>,
    pub(crate) queue: Arc<PriorityQueue<Item>>,
    pub(crate) throttle: Arc<ThrottleGroup>,
    pub(crate) resolver: Arc<Resolver>,
    pub(crate) priority_rules: RwLock<Arc<Vec<(Predicate, Priority)>>>,
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) pending_delay_ms: AtomicU64,
    /// Panics of the dispatcher and its delivery tasks (health shows them).
    pub(crate) dispatcher_panics: AtomicU64,
    pub(crate) shutting_down: AtomicBool,
}

impl Shared {
    pub(crate) fn config(&self) -> Arc<StreamConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// The running pipeline.
pub struct StreamManager {
    pub(crate) shared: Arc<Shared>,
    pub(crate) loader: Loader,
    pub(crate) registry: Registry,
    pub(crate) cursors: Arc<dyn CursorStore>,
    pub(crate) streams: tokio::sync::Mutex<BTreeMap<String, Stream>>,
    pub(crate) dispatcher: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(crate) background: std::sync::Mutex<Vec<JoinHandle<()>>>,
    pub(crate) start_jitter: Duration,
    pub(crate) started_at: Instant,
    /// Serialises `apply_config`.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for StreamManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamManager").finish_non_exhaustive()
    }
}

/// What a shutdown did with the backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Records queued when the sources had stopped.
    pub queued: usize,
    /// Of those, records still queued at the deadline, dead-lettered as `shutdown`.
    pub dead_lettered: usize,
}

impl StreamManager {
    /// A builder for `config`.
    pub fn builder(config: StreamConfig) -> Builder {
        Builder {
            config,
            producer: None,
            dlq: None,
            cursors: None,
            lag_probe: None,
            registry: Registry::builtin(),
            max_in_flight: 8,
            check_interval: Duration::from_secs(1),
            start_jitter: Duration::ZERO,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<StreamConfig> {
        self.shared.config()
    }

    /// The source types this manager can build.
    pub fn source_types(&self) -> Vec<String> {
        self.registry.names()
    }

    /// Stops every stream, drains the queue into Kafka within `timeout`, and dead-letters
    /// whatever could not be sent in time (reason `shutdown`). Cursors commit as records
    /// settle. Safe to call once; later calls do nothing.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + timeout;
        let grace = (timeout / 3).min(Duration::from_secs(10));
        {
            let mut streams = self.streams.lock().await;
            for stream in streams.values_mut() {
                stream.halt(grace).await;
            }
        }
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        let queued = self.shared.queue.len();
        self.shared.queue.close();
        let dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(d) = dispatcher {
            let abort = d.abort_handle();
            if tokio::time::timeout_at(deadline, d).await.is_err() {
                tracing::error!(
                    "shutdown timeout: the dispatcher did not finish; leftovers go to the DLQ"
                );
                abort.abort();
            }
        }
        let left = self.shared.queue.drain();
        let report = ShutdownReport {
            queued,
            dead_lettered: left.len(),
        };
        if !left.is_empty() {
            tracing::warn!(
                records = left.len(),
                "dead-lettering records not sent before the shutdown timeout"
            );
            self.shared
                .dead_letter_items(
                    left,
                    producer::FailureReason::Shutdown,
                    "not sent before the shutdown timeout",
                )
                .await;
        }
        let remaining = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(1));
        if let Err(e) = self.shared.delivery.producer().flush(remaining).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "producer flush at shutdown"
            );
        }
        let _ = self.shared.delivery.flush_buffer().await;
        for task in self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        report
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
