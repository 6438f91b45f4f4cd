//! `StreamManager`: the running pipeline's state, and its shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_client::{CursorStore, Registry};
use stream_config::{Loader, StreamConfig};
use tokio::task::JoinHandle;

use record_path::RecordPath;

use crate::builder::Builder;
use crate::streams::Stream;

/// The running pipeline.
pub struct StreamManager {
    /// The record path (queue, throttles, resolver, producer and DLQ).
    pub(crate) shared: Arc<RecordPath>,
    /// Where the throttle's lag comes from (`LagHealth::mode`).
    pub(crate) lag_mode: &'static str,
    pub(crate) loader: Loader,
    pub(crate) registry: Registry,
    /// Ingestion modes by name (built-in and registered).
    pub(crate) modes: ingestion_modes::ModeRegistry,
    pub(crate) cursors: Arc<dyn CursorStore>,
    pub(crate) streams: tokio::sync::Mutex<BTreeMap<String, Stream>>,
    /// The streams as last seen under `streams`' lock, for probes that must not wait for
    /// it (a stop holds it for up to its grace).
    pub(crate) streams_seen: std::sync::Mutex<Arc<Vec<crate::StreamInfo>>>,
    pub(crate) dispatcher: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(crate) background: std::sync::Mutex<Vec<JoinHandle<()>>>,
    pub(crate) start_jitter: Duration,
    pub(crate) started_at: Instant,
    /// Serialises `apply_config`.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// Cluster mode: this worker's part in the group.
    pub(crate) cluster: Option<Arc<dyn cluster::Coordinator>>,
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
    /// Records not acknowledged by the deadline (queued, or with the producer),
    /// dead-lettered as `shutdown`.
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
            modes: ingestion_modes::ModeRegistry::builtin(),
            max_in_flight: 8,
            check_interval: Duration::from_secs(1),
            start_jitter: Duration::ZERO,
            topics: None,
            schema_roots: None,
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

    /// Stops every stream, drains the queue into Kafka within `timeout`, and
    /// dead-letters (reason `shutdown`, replayable) every record not acknowledged by then:
    /// queued, popped by the dispatcher, or in flight in the producer. Returns a few
    /// seconds after the deadline at most, also while Kafka is down or the queue is
    /// blocked. Dead letters the store cannot take are written to `dlq.journal_path`,
    /// replayed into the store at the next start. Cursors commit as records settle. Safe
    /// to call once; later calls do nothing.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + timeout;
        let grace = (timeout / 3).min(Duration::from_secs(10));
        self.shared.delivery.begin_shutdown();
        // A worker keeps its slots (and heartbeats) until its records have settled, so
        // nobody else resumes its sources from a cursor about to move.
        if let Some(c) = &self.cluster {
            c.stop_events();
        }
        // 1. Sources stop: an in-flight poll may finish within `grace`, buffers flush
        // into the queue. A source blocked on a full queue is released by closing it
        // (its records are then dead-lettered as `shutdown`).
        let (stops, operations): (Vec<_>, Vec<_>) = {
            let mut streams = self.streams.lock().await;
            let operations = streams.values().map(|s| s.op.clone()).collect();
            let stops = streams
                .values_mut()
                .filter_map(|s| s.take_handle())
                .map(|h| tokio::spawn(async move { h.stop(grace).await }))
                .collect();
            (stops, operations)
        };
        let all_stopped = async {
            for s in stops {
                let _ = s.await;
            }
            // A stop or pause in progress (its ingestion taken out before this) flushes
            // into the queue too: the queue closes after it, within the same grace.
            for op in operations {
                drop(op.lock().await);
            }
        };
        tokio::pin!(all_stopped);
        let stopped_in_time =
            tokio::time::timeout(grace + Duration::from_secs(1), &mut all_stopped)
                .await
                .is_ok();
        self.shared.begin_shutdown();
        let queued = self.shared.queue.len();
        self.shared.queue.close();
        if !stopped_in_time {
            tracing::warn!(
                "a source did not stop within the grace period; closing the queue under it"
            );
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut all_stopped).await;
        }
        // 2. The queue drains into Kafka until the deadline.
        let dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(d) = dispatcher {
            let abort = d.abort_handle();
            if tokio::time::timeout_at(deadline, d).await.is_err() {
                tracing::error!(
                    "shutdown deadline: records not yet acknowledged go to the DLQ (reason shutdown)"
                );
                // Aborts the dispatcher and every delivery task with it.
                abort.abort();
                tokio::task::yield_now().await;
            }
        }
        // 3. Whatever was popped but not reported, and whatever is still queued.
        let in_flight = self.shared.take_registered();
        let with_producer: usize = in_flight.iter().map(|b| b.len()).sum();
        let left = self.shared.queue.drain();
        let dead_lettered = with_producer + left.len();
        if dead_lettered > 0 {
            tracing::warn!(
                in_flight = with_producer,
                queued = left.len(),
                "dead-lettering records not acknowledged before the shutdown deadline"
            );
            for items in in_flight
                .iter()
                .map(|b| b.as_slice())
                .chain([left.as_slice()])
            {
                self.shared
                    .dead_letter_items(
                        items,
                        producer::FailureReason::Shutdown,
                        "not acknowledged before the shutdown deadline",
                    )
                    .await;
            }
        }
        // 4. The producer gets what remains of the deadline (at least a second).
        let remaining = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(1));
        if let Err(e) = self.shared.delivery.producer().flush(remaining).await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "producer flush at shutdown"
            );
        }
        // 5. Dead letters: one last try at the store, then the journal.
        let _ =
            tokio::time::timeout(Duration::from_secs(3), self.shared.delivery.flush_buffer()).await;
        let journal = std::path::PathBuf::from(&self.shared.config().dlq.journal_path);
        match self.shared.delivery.spill(&journal) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                records = n,
                path = %journal.display(),
                "the DLQ store is unreachable: dead letters written to the journal, stored at the next start"
            ),
            Err(e) => tracing::error!(
                error = %e,
                path = %journal.display(),
                "cannot write the dead-letter journal; these dead letters are lost"
            ),
        }
        for task in self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Some(c) = &self.cluster {
            c.leave().await;
        }
        ShutdownReport {
            queued,
            dead_lettered,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<RecordPath> {
        &self.shared
    }

    /// Each source's own throttle (fed by the lag of its topics) and its last decision,
    /// by source id: only sources whose topics' lag was read.
    pub fn source_throttles(&self) -> Vec<(String, throttling::Decision)> {
        self.shared.throttle.snapshot()
    }
}
