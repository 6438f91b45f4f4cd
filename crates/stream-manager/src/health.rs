//! Health of every component, and one snapshot of the pipeline's figures.

use serde::Serialize;

use crate::{StreamInfo, StreamManager, StreamStatus};

/// The health of the pipeline and of each component.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// True only when every component is healthy.
    pub healthy: bool,
    /// Kafka.
    pub producer: ProducerHealth,
    /// The queue.
    pub queue: QueueHealth,
    /// The streams.
    pub streams: StreamsHealth,
    /// The dead-letter queue.
    pub dlq: DlqHealth,
    /// Panics of the dispatcher and its delivery tasks since start (their records went
    /// to the DLQ as `task_panic`). Any is unhealthy until a restart: it is a bug in the
    /// service, and must be seen.
    pub task_panics: u64,
    /// The supervised background tasks (dispatcher, lag checker, DLQ worker, DLQ
    /// retention, throughput meter, chunk release): each restarted after a panic, any restart unhealthy until a restart
    /// of the service.
    pub workers: Vec<crate::WorkerHealth>,
    /// The throttle's lag: its mode, the consumer groups watched, the last failure
    /// (informational: it does not make the service unhealthy).
    pub lag: crate::LagHealth,
}

/// Kafka connectivity.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerHealth {
    /// A metadata request succeeded.
    pub kafka_connected: bool,
    /// Brokers known.
    pub brokers: usize,
    /// Last error.
    pub last_error: Option<String>,
}

/// Queue fill.
#[derive(Debug, Clone, Serialize)]
pub struct QueueHealth {
    /// Records held.
    pub size: usize,
    /// Percent of the tighter bound.
    pub utilization: f64,
}

/// Streams' state.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsHealth {
    /// Configured.
    pub total: usize,
    /// Running.
    pub active: usize,
    /// Running but whose last fetch (or cursor commit) failed.
    pub failing: Vec<String>,
    /// Running but whose last cursor commit failed (their fetch state is not advancing).
    pub commit_failing: Vec<String>,
}

/// DLQ state.
#[derive(Debug, Clone, Serialize)]
pub struct DlqHealth {
    /// The store answers and nothing waits in memory.
    pub reachable: bool,
    /// Rows still to deliver.
    pub pending: i64,
    /// Dead letters waiting in memory for the store.
    pub buffered: usize,
}

/// One snapshot of the pipeline's figures.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Queue length by priority (low, normal, high, critical) and totals.
    pub queue: QueueMetrics,
    /// Global throttle.
    pub throttle: ThrottleMetrics,
    /// Records with the producer and not yet reported.
    pub producer_in_flight: i64,
    /// Per stream.
    pub streams: Vec<StreamInfo>,
}

impl MetricsSnapshot {
    /// Records delivered to Kafka, all streams together.
    pub fn records_processed(&self) -> u64 {
        self.streams.iter().map(|s| s.records_processed).sum()
    }
}

/// Queue figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueueMetrics {
    /// Records by priority: low, normal, high, critical.
    pub len_by_priority: [usize; 4],
    /// Bytes held.
    pub bytes: u64,
    /// Accepted since start.
    pub enqueued: u64,
    /// Handed to the dispatcher since start.
    pub dequeued: u64,
    /// Evicted by `drop_oldest`.
    pub evicted: u64,
    /// Refused.
    pub refused: u64,
}

impl QueueMetrics {
    /// Records queued, all priorities.
    pub fn len(&self) -> usize {
        self.len_by_priority.iter().sum()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Throttle figures.
#[derive(Debug, Clone, Serialize)]
pub struct ThrottleMetrics {
    /// `normal`, `moderate` or `critical`.
    pub state: &'static str,
    /// Records per second.
    pub rate: f64,
    /// Backoff level.
    pub backoff_level: u32,
    /// Average lag in the window.
    pub lag_avg: f64,
    /// 95th percentile lag in the window.
    pub lag_p95: u64,
}

impl StreamManager {
    /// Health of every component; `healthy` only if all are. It never waits on the
    /// streams lock (a stop holds it for up to its grace): the streams are as last seen
    /// when the lock is busy, so probes answer promptly.
    pub async fn health(&self) -> Health {
        let kafka = self.shared.delivery.producer().health().await;
        let stats = self.shared.delivery.dlq_stats().await;
        let streams = self.streams_for_probe();
        let failing: Vec<String> = streams
            .iter()
            .filter(|s| s.failing)
            .map(|s| s.id.clone())
            .collect();
        let commit_failing: Vec<String> = streams
            .iter()
            .filter(|s| s.commit_failing)
            .map(|s| s.id.clone())
            .collect();
        let active = streams
            .iter()
            .filter(|s| s.status == StreamStatus::Running)
            .count();
        let dlq = DlqHealth {
            reachable: stats.is_ok() && self.shared.delivery.dlq_healthy(),
            pending: stats.map(|s| s.pending).unwrap_or(-1),
            buffered: self.shared.delivery.buffered(),
        };
        let queue = QueueHealth {
            size: self.shared.queue.len(),
            utilization: self.shared.queue.utilization_percent(),
        };
        let task_panics = self
            .shared
            .dispatcher_panics
            .load(std::sync::atomic::Ordering::Relaxed);
        let workers = self.shared.workers();
        Health {
            healthy: kafka.connected
                && dlq.reachable
                && failing.is_empty()
                && queue.utilization < 100.0
                && task_panics == 0
                && workers.iter().all(|w| w.restarts == 0),
            task_panics,
            workers,
            lag: self.lag_health(),
            producer: ProducerHealth {
                kafka_connected: kafka.connected,
                brokers: kafka.brokers,
                last_error: kafka.last_error,
            },
            queue,
            streams: StreamsHealth {
                total: streams.len(),
                active,
                failing,
                commit_failing,
            },
            dlq,
        }
    }

    /// Records in, out and dead-lettered per second over the last 15 minutes (a ring
    /// sampled once a second; reading it never waits for the pipeline).
    pub fn throughput(&self) -> crate::Throughput {
        self.shared.meter.snapshot()
    }

    /// Publishes the gauges that otherwise move only when the dispatcher pops (queue
    /// sizes by priority): call before a scrape so a stalled pipeline shows its backlog.
    pub fn refresh_metrics(&self) {
        self.shared.queue.publish_metrics();
        producer::publish_in_flight(self.shared.delivery.producer().in_flight());
        // One series per configured source, from the streams as last seen when the
        // streams lock is busy: a scrape never waits for a stream operation. Only the
        // freshness is worked out (not every figure of every stream: at 10,000 sources
        // that was megabytes per scrape).
        let set = |id: &str, age: Option<f64>| {
            if let Some(age) = age {
                metrics::gauge!(crate::SOURCE_FRESHNESS, "source" => id.to_owned()).set(age);
            }
        };
        match self.streams.try_lock() {
            Ok(streams) => streams
                .iter()
                .for_each(|(id, s)| set(id, s.freshness_seconds())),
            Err(_) => (self.streams_seen.lock())
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .for_each(|s| set(&s.id, s.freshness_seconds)),
        }
    }

    /// Every figure in one snapshot.
    pub async fn get_metrics(&self) -> MetricsSnapshot {
        let q = self.shared.queue.stats();
        let t = self.shared.throttle.global().snapshot();
        MetricsSnapshot {
            uptime_seconds: self.started_at.elapsed().as_secs(),
            queue: QueueMetrics {
                len_by_priority: q.len_by_priority,
                bytes: q.bytes(),
                enqueued: q.enqueued,
                dequeued: q.dequeued,
                evicted: q.evicted,
                refused: q.refused,
            },
            throttle: ThrottleMetrics {
                state: t.state.as_str(),
                rate: t.rate,
                backoff_level: t.backoff_level,
                lag_avg: t.window.avg,
                lag_p95: t.window.p95,
            },
            producer_in_flight: self.shared.delivery.producer().in_flight(),
            streams: self.list_streams().await,
        }
    }
}
