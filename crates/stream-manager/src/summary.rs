//! The seed's two views, from the components' own counters: `get_metrics()` (producer,
//! queue, throttling, API, per-stream figures) as [`Summary`], and `health_check()`'s
//! per-component verdicts as [`Components`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Health, StreamInfo, StreamManager, StreamStatus};

/// The seed's `get_metrics()`: every figure since start (per stream: since it last
/// started).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Seconds since the manager started.
    pub uptime_seconds: u64,
    /// Kafka producer.
    pub producer: ProducerSummary,
    /// The priority queue.
    pub queue: QueueSummary,
    /// The global (lag-driven) throttle; with `throttling.lag_per_source`, the state and
    /// level of whichever throttle (global or a source's) is furthest along.
    pub throttling: ThrottlingSummary,
    /// The HTTP clients of every source, together.
    pub api: ApiSummary,
    /// Per stream, by source id.
    pub streams: BTreeMap<String, StreamSummary>,
}

/// Figures indexed LOW..CRITICAL (the queue's order), by priority name.
fn by_priority<T: Copy>(values: [T; 4]) -> BTreeMap<&'static str, T> {
    use queue::Priority::{Critical, High, Low, Normal};
    [Low, Normal, High, Critical]
        .into_iter()
        .zip(values)
        .map(|(p, v)| (p.as_str(), v))
        .collect()
}

/// Producer figures since start.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProducerSummary {
    /// Records acknowledged by Kafka.
    pub total_sent: u64,
    /// Records that failed for good (after the producer's retries; they went to the DLQ).
    pub total_failed: u64,
    /// Resends by the producer's retry layer.
    pub retry_count: u64,
}

/// Queue figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSummary {
    /// Records held now, all priorities.
    pub size: usize,
    /// Records accepted since start.
    pub enqueued: u64,
    /// Records handed to the dispatcher since start.
    pub dequeued: u64,
    /// Records evicted (`drop_oldest`) or refused (`drop_newest`) since start; each
    /// went to the DLQ as `queue_overflow`.
    pub dropped: u64,
    /// Fill of the tighter bound (`queue_max_size` or `queue_max_bytes`), 0–100.
    pub utilization_percent: f64,
    /// Records held now by priority (`low`, `normal`, `high`, `critical`).
    pub by_priority: BTreeMap<&'static str, usize>,
    /// Payload bytes held now by priority.
    pub bytes_by_priority: BTreeMap<&'static str, u64>,
    /// The record cap (`queue_max_size`), shared by every priority.
    pub max_size: usize,
    /// The byte cap (`queue_max_bytes`), when set.
    pub max_bytes: Option<u64>,
}

/// Throttle figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThrottlingSummary {
    /// `normal`, `moderate` or `critical`.
    pub current_state: &'static str,
    /// Exponential backoff level (0 outside `critical`).
    pub backoff_level: u32,
    /// Send-rate changes since start, up and down.
    pub rate_adjustments: u64,
}

/// The sources' HTTP clients, all together (sources that request nothing remote — the
/// `synthetic` and `file` connectors — add nothing).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ApiSummary {
    /// Answered requests (2xx, 304, and polls the response cache answered) over
    /// `total_requests`; 1 when there were none.
    pub success_rate: f64,
    /// Polls the response cache answered over `total_requests`; 0 when there were none.
    pub cache_hit_rate: f64,
    /// Every HTTP answer, every request that got none (timed out, failed), every cache
    /// answer, since each source was built.
    pub total_requests: u64,
}

/// One stream's figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StreamSummary {
    /// Records of this stream acknowledged by Kafka.
    pub records_processed: u64,
    /// Failed fetches since the stream last started.
    pub errors: u64,
    /// Seconds since the stream last started (0 when not running).
    pub uptime_seconds: u64,
}

/// The seed's `health_check()` components, each with its own verdict. Informational:
/// `/ready` keeps its own rules, and [`Health::healthy`] its own.
#[derive(Debug, Clone, Serialize)]
pub struct Components {
    /// Kafka: healthy while a metadata request succeeds.
    pub producer: ProducerComponent,
    /// Healthy while the queue is below its bound.
    pub queue: QueueComponent,
    /// Healthy unless the throttle is `critical` (consumer lag at or above
    /// `critical_consumer_lag`: sending is backed off).
    pub throttling: ThrottlingComponent,
    /// Healthy while no running source's last fetch failed.
    pub api_clients: ApiClientsComponent,
    /// Healthy while the dead-letter store answers and nothing waits in memory for it.
    pub dlq: DlqComponent,
    /// Healthy while every stream that should run here runs and none is failing.
    pub streams: StreamsComponent,
}

/// The producer's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ProducerComponent {
    /// The verdict.
    pub healthy: bool,
    /// A metadata request succeeded.
    pub kafka_connected: bool,
}

/// The queue's verdict.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueueComponent {
    /// The verdict.
    pub healthy: bool,
    /// Records held.
    pub size: usize,
    /// Fill of the tighter bound, 0–100.
    pub utilization_percent: f64,
}

/// The throttle's verdict.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThrottlingComponent {
    /// The verdict.
    pub healthy: bool,
    /// `normal`, `moderate` or `critical`.
    pub current_state: &'static str,
    /// Exponential backoff level.
    pub backoff_level: u32,
}

/// The API clients' verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ApiClientsComponent {
    /// The verdict.
    pub healthy: bool,
    /// Running sources whose last fetch failed.
    pub failing: Vec<String>,
}

/// The DLQ's verdict.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DlqComponent {
    /// The verdict.
    pub healthy: bool,
    /// The store answers.
    pub reachable: bool,
    /// Rows still to deliver (-1 when the store does not answer).
    pub pending: i64,
    /// Dead letters waiting in memory for the store.
    pub buffered: usize,
}

/// The streams' verdict.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsComponent {
    /// The verdict.
    pub healthy: bool,
    /// Streams running.
    pub active_count: usize,
    /// Streams configured.
    pub total: usize,
    /// Streams that should run here but do not (stopped or paused by an operator).
    pub not_running: Vec<String>,
    /// Running streams whose last fetch or fetch-state commit failed.
    pub failing: Vec<String>,
}

fn rate(part: u64, whole: u64, none: f64) -> f64 {
    if whole == 0 {
        none
    } else {
        part as f64 / whole as f64
    }
}

impl StreamManager {
    /// The global throttle's decision, or a source's own (`throttling.lag_per_source`)
    /// where that one is further along: by state, then backoff level.
    fn worst_throttle(&self) -> throttling::Decision {
        std::iter::once(self.shared.throttle.global().snapshot())
            .chain(self.shared.throttle.snapshot().into_iter().map(|(_, d)| d))
            .max_by_key(|d| (d.state.as_number(), d.backoff_level))
            .unwrap_or_else(|| self.shared.throttle.global().snapshot())
    }

    /// The seed's `get_metrics()` figures, read from each component's own counters. It
    /// never waits for a stream being stopped (the streams are as last seen then).
    pub fn summary(&self) -> Summary {
        let producer = self.shared.delivery.producer().stats();
        let q = self.shared.queue.stats();
        let throttle = self.shared.throttle.global();
        let decision = self.worst_throttle();
        let streams = self.streams_for_probe();
        let config = self.shared.config();
        let (mut requests, mut failed, mut cached) = (0u64, 0u64, 0u64);
        for part in streams.iter().flat_map(|s| &s.parts) {
            requests += part.requests;
            failed += part.failed_requests;
            cached += part.cache_hits;
        }
        Summary {
            uptime_seconds: self.started_at.elapsed().as_secs(),
            producer: ProducerSummary {
                total_sent: producer.sent,
                total_failed: producer.failed,
                retry_count: producer.retries,
            },
            queue: QueueSummary {
                size: q.len_by_priority.iter().sum(),
                enqueued: q.enqueued,
                dequeued: q.dequeued,
                dropped: q.evicted + q.refused,
                utilization_percent: self.shared.queue.utilization_percent(),
                by_priority: by_priority(q.len_by_priority),
                bytes_by_priority: by_priority(q.bytes_by_priority),
                max_size: config.queue_max_size,
                max_bytes: config.queue_max_bytes,
            },
            throttling: ThrottlingSummary {
                current_state: decision.state.as_str(),
                backoff_level: decision.backoff_level,
                rate_adjustments: throttle.rate_adjustments(),
            },
            api: ApiSummary {
                success_rate: rate(requests - failed.min(requests), requests, 1.0),
                cache_hit_rate: rate(cached, requests, 0.0),
                total_requests: requests,
            },
            streams: streams
                .iter()
                .map(|s| {
                    let figures = StreamSummary {
                        records_processed: s.records_processed,
                        errors: s.errors,
                        uptime_seconds: s.uptime_seconds,
                    };
                    (s.id.clone(), figures)
                })
                .collect(),
        }
    }

    /// The seed's `health_check()` components, each with its verdict: from `health`
    /// (the producer, queue and DLQ as it found them) and the throttle and streams as
    /// they are now (never waiting for a stream being stopped).
    pub fn components(&self, health: &Health) -> Components {
        let decision = self.worst_throttle();
        let streams = self.streams_for_probe();
        let running = |s: &&StreamInfo| s.status == StreamStatus::Running;
        let fetch_failing: Vec<String> = streams
            .iter()
            .filter(running)
            .filter(|s| s.failing && !s.commit_failing)
            .map(|s| s.id.clone())
            .collect();
        let failing: Vec<String> = streams
            .iter()
            .filter(running)
            .filter(|s| s.failing)
            .map(|s| s.id.clone())
            .collect();
        let not_running: Vec<String> = streams
            .iter()
            .filter(|s| matches!(s.status, StreamStatus::Stopped | StreamStatus::Paused))
            .map(|s| s.id.clone())
            .collect();
        let critical = decision.state == throttling::ThrottleState::Critical;
        Components {
            producer: ProducerComponent {
                healthy: health.producer.kafka_connected,
                kafka_connected: health.producer.kafka_connected,
            },
            queue: QueueComponent {
                healthy: health.queue.utilization < 100.0,
                size: health.queue.size,
                utilization_percent: health.queue.utilization,
            },
            throttling: ThrottlingComponent {
                healthy: !critical,
                current_state: decision.state.as_str(),
                backoff_level: decision.backoff_level,
            },
            api_clients: ApiClientsComponent {
                healthy: fetch_failing.is_empty(),
                failing: fetch_failing,
            },
            dlq: DlqComponent {
                healthy: health.dlq.reachable,
                reachable: health.dlq.reachable,
                pending: health.dlq.pending,
                buffered: health.dlq.buffered,
            },
            streams: StreamsComponent {
                healthy: not_running.is_empty() && failing.is_empty(),
                active_count: streams.iter().filter(running).count(),
                total: streams.len(),
                not_running,
                failing,
            },
        }
    }
}
