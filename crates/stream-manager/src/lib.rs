//! The composed pipeline: sources → ingestion modes → queue → throttling →
//! topic-resolver → producer → Kafka, with the DLQ beside the producer.
//!
//! [`StreamManager`] is a thin façade: each component comes in through its trait (a
//! `Producer`, a `DeadLetterStore`, a `CursorStore`, a `LagProbe`, a source `Registry`)
//! and can be replaced; [`Builder`] fills what is not given from the configuration.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stream_manager::StreamManager;
//! let config = stream_config::Loader::new().load_file("config/stream_config.yaml")?;
//! let manager = StreamManager::builder(config).start().await?;
//! println!("{:?}", manager.health().await);
//! manager.shutdown(std::time::Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```

mod convert;
mod dlq;
mod pipeline;
mod streams;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use api_client::{CursorStore, Registry};
use producer::{DeadLetterStore, Delivery, Producer};
use queue::{Priority, PriorityQueue};
use serde::Serialize;
use store::SqlStore;
use stream_config::{Loader, StreamConfig};
use throttling::{LagProbe, ThrottleGroup};
use tokio::task::JoinHandle;
use topic_resolver::{Predicate, Resolver};

pub use crate::dlq::ReplayOutcome;
use crate::pipeline::Item;
use crate::streams::Stream;
pub use crate::streams::{StreamInfo, StreamStatus};
pub use producer::{DeadLetter, DlqFilter, DlqStats, DlqStatus};

/// Errors of the manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] stream_config::Error),
    /// A component could not be built or reached.
    #[error("{component}: {message}")]
    Component {
        /// Which component.
        component: &'static str,
        /// Why.
        message: String,
    },
    /// The database (dead letters, source state) could not be opened.
    #[error("cannot open the store (dlq.url)")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The dead-letter store failed.
    #[error(transparent)]
    Dlq(#[from] producer::DlqError),
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    UnknownDeadLetter(i64),
    /// No stream has this id.
    #[error("no stream `{0}`")]
    UnknownStream(String),
    /// The operation does not fit the stream's state.
    #[error("stream `{id}` is {status:?}; {what}")]
    State {
        /// The stream.
        id: String,
        /// Its state.
        status: StreamStatus,
        /// What cannot be done.
        what: &'static str,
    },
}

/// Result with the manager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn component(component: &'static str) -> impl FnOnce(String) -> Error {
    move |message| Error::Component { component, message }
}

/// State shared by the manager's tasks.
pub(crate) struct Shared {
    config: RwLock<Arc<StreamConfig>>,
    pub(crate) queue: Arc<PriorityQueue<Item>>,
    pub(crate) throttle: Arc<ThrottleGroup>,
    pub(crate) resolver: Arc<Resolver>,
    pub(crate) priority_rules: RwLock<Arc<Vec<(Predicate, Priority)>>>,
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) pending_delay_ms: AtomicU64,
    shutting_down: AtomicBool,
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

fn compile_priority_rules(cfg: &StreamConfig) -> Result<Vec<(Predicate, Priority)>> {
    cfg.routing
        .priority_rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Predicate::new(
                &format!("routing.priority_rules[{i}]"),
                &r.field,
                convert::operator(r.operator),
                &r.value,
            )
            .map(|p| (p, convert::priority(r.priority)))
            .map_err(|e| component("routing")(e.to_string()))
        })
        .collect()
}

/// Assembles a [`StreamManager`]; components not given are built from the config.
pub struct Builder {
    config: StreamConfig,
    producer: Option<Arc<dyn Producer>>,
    dlq: Option<Arc<dyn DeadLetterStore>>,
    cursors: Option<Arc<dyn CursorStore>>,
    lag_probe: Option<Arc<dyn LagProbe>>,
    registry: Registry,
    max_in_flight: usize,
    check_interval: Duration,
    start_jitter: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Uses `producer` instead of a `KafkaProducer` from `kafka`.
    pub fn producer(mut self, producer: Arc<dyn Producer>) -> Self {
        self.producer = Some(producer);
        self
    }

    /// Uses `store` instead of the `dlq.url` database.
    pub fn dlq(mut self, store: Arc<dyn DeadLetterStore>) -> Self {
        self.dlq = Some(store);
        self
    }

    /// Uses `cursors` instead of the `dlq.url` database.
    pub fn cursors(mut self, cursors: Arc<dyn CursorStore>) -> Self {
        self.cursors = Some(cursors);
        self
    }

    /// Uses `probe` for consumer lag (default: Kafka lag of `throttling.consumer_groups`;
    /// none — no lag throttling — when no group is configured). A
    /// [`throttling::QueueFillProbe`] can be passed here deliberately.
    pub fn lag_probe(mut self, probe: Arc<dyn LagProbe>) -> Self {
        self.lag_probe = Some(probe);
        self
    }

    /// Uses `registry` for source types (default: the built-in connectors).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// How often lag is checked (default 1 s).
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every;
        self
    }

    /// Random delay of each source's first poll, up to this (default 0).
    pub fn start_jitter(mut self, jitter: Duration) -> Self {
        self.start_jitter = jitter;
        self
    }

    /// Builds the components and starts every enabled stream.
    pub async fn start(self) -> Result<StreamManager> {
        let cfg = self.config;
        let loader = Loader::new().with_source_types(self.registry.names());
        loader.validate(&cfg, "<config>")?;
        let (dlq, cursors) = match (self.dlq, self.cursors) {
            (Some(dlq), Some(cursors)) => (dlq, cursors),
            (dlq, cursors) => {
                let sql = Arc::new(
                    SqlStore::connect(&cfg.dlq.url)
                        .await
                        .map_err(|e| Error::Store(Box::new(e)))?,
                );
                (
                    dlq.unwrap_or_else(|| sql.clone()),
                    cursors.unwrap_or_else(|| sql.clone()),
                )
            }
        };
        let producer: Arc<dyn Producer> = match self.producer {
            Some(p) => p,
            None => Arc::new(
                producer::KafkaProducer::new(&cfg.kafka)
                    .map_err(|e| component("producer")(e.to_string()))?,
            ),
        };
        let queue = Arc::new(PriorityQueue::new(convert::queue_config(&cfg)));
        // Lag comes from the watched consumer groups. Without any, only
        // `max_send_rate` applies: throttling the drain on the queue's own fill is a
        // positive feedback loop (a backlog slows the drain, which grows the backlog) —
        // the broker-outage scenario left the rate at 1 record/s with 90 k queued.
        let probe: Option<Arc<dyn LagProbe>> = match self.lag_probe {
            Some(p) => Some(p),
            None if !cfg.throttling.consumer_groups.is_empty() => {
                let mut topics: Vec<String> = cfg.topics.keys().cloned().collect();
                topics.push(cfg.routing.fallback_topic.clone());
                topics.extend(cfg.sources.values().filter_map(|s| s.topic.clone()));
                topics.sort();
                topics.dedup();
                Some(Arc::new(producer::KafkaLagProbe::new(
                    producer::client_config(&cfg.kafka),
                    cfg.throttling.consumer_groups.clone(),
                    topics,
                )))
            }
            None => None,
        };
        let delivery = Arc::new(
            Delivery::new(producer, dlq)
                .with_first_retry(Duration::from_secs(cfg.dlq.retry_base_delay_seconds)),
        );
        let shared = Arc::new(Shared {
            resolver: Arc::new(
                Resolver::new(convert::routing_rules(&cfg))
                    .map_err(|e| component("routing")(e.to_string()))?,
            ),
            priority_rules: RwLock::new(Arc::new(compile_priority_rules(&cfg)?)),
            throttle: Arc::new(ThrottleGroup::new(convert::throttle_settings(
                &cfg.throttling,
            ))),
            config: RwLock::new(Arc::new(cfg.clone())),
            queue,
            delivery,
            pending_delay_ms: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
        });
        let manager = StreamManager {
            shared: shared.clone(),
            loader,
            registry: self.registry,
            cursors,
            streams: tokio::sync::Mutex::new(BTreeMap::new()),
            dispatcher: std::sync::Mutex::new(Some(tokio::spawn(pipeline::dispatch(
                shared.clone(),
                self.max_in_flight,
            )))),
            background: std::sync::Mutex::new(
                probe
                    .map(|p| tokio::spawn(lag_checker(shared.clone(), p, self.check_interval)))
                    .into_iter()
                    .chain([tokio::spawn(dlq_worker(shared.clone()))])
                    .collect(),
            ),
            start_jitter: self.start_jitter,
            started_at: Instant::now(),
        };
        for (id, src) in &cfg.sources {
            manager.add_stream(id, src.clone(), src.enabled).await?;
        }
        Ok(manager)
    }
}

async fn lag_checker(shared: Arc<Shared>, probe: Arc<dyn LagProbe>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        match shared.throttle.global().check(probe.as_ref()).await {
            Ok(d) => {
                if !d.delay.is_zero() {
                    shared
                        .pending_delay_ms
                        .fetch_max(d.delay.as_millis() as u64, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "lag probe failed; throttle unchanged"),
        }
    }
}

async fn dlq_worker(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.shutting_down() {
            return;
        }
        if shared.delivery.buffered() > 0 && shared.delivery.flush_buffer().await.is_err() {
            continue;
        }
        let cfg = shared.config();
        if !cfg.enable_dlq {
            continue;
        }
        let base = Duration::from_secs(cfg.dlq.retry_base_delay_seconds);
        let store = shared.delivery.store().clone();
        let producer = shared.delivery.producer().clone();
        if let Err(e) = producer::retry_due(
            store.as_ref(),
            producer.as_ref(),
            pipeline::now_ms(),
            base,
            cfg.dlq.max_retries,
        )
        .await
        {
            tracing::warn!(error = %e, "DLQ retry pass failed");
        }
        let _ = shared.delivery.dlq_stats().await;
    }
}

/// The running pipeline.
pub struct StreamManager {
    shared: Arc<Shared>,
    loader: Loader,
    registry: Registry,
    cursors: Arc<dyn CursorStore>,
    streams: tokio::sync::Mutex<BTreeMap<String, Stream>>,
    dispatcher: std::sync::Mutex<Option<JoinHandle<()>>>,
    background: std::sync::Mutex<Vec<JoinHandle<()>>>,
    start_jitter: Duration,
    started_at: Instant,
}

impl std::fmt::Debug for StreamManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamManager").finish_non_exhaustive()
    }
}

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
    /// Running but whose last fetch failed.
    pub failing: Vec<String>,
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

    /// Health of every component; `healthy` only if all are.
    pub async fn health(&self) -> Health {
        let kafka = self.shared.delivery.producer().health().await;
        let stats = self.shared.delivery.dlq_stats().await;
        let streams = self.list_streams().await;
        let failing: Vec<String> = streams
            .iter()
            .filter(|s| s.failing)
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
        Health {
            healthy: kafka.connected
                && dlq.reachable
                && failing.is_empty()
                && queue.utilization < 100.0,
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
            },
            dlq,
        }
    }

    /// Publishes the gauges that otherwise move only when the dispatcher pops (queue
    /// sizes by priority): call before a scrape so a stalled pipeline shows its backlog.
    pub fn refresh_metrics(&self) {
        self.shared.queue.publish_metrics();
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
                state: match t.state {
                    throttling::ThrottleState::Normal => "normal",
                    throttling::ThrottleState::Moderate => "moderate",
                    throttling::ThrottleState::Critical => "critical",
                },
                rate: t.rate,
                backoff_level: t.backoff_level,
                lag_avg: t.window.avg,
                lag_p95: t.window.p95,
            },
            producer_in_flight: self.shared.delivery.producer().in_flight(),
            streams: self.list_streams().await,
        }
    }

    /// Validates `next` and applies it: routing and priority rules swap at once; only
    /// streams whose configuration changed restart; removed streams stop, new ones start.
    /// Queue and Kafka settings take effect at the next restart. Returns the ids of the
    /// streams that were (re)started or stopped.
    pub async fn apply_config(&self, next: StreamConfig) -> Result<Vec<String>> {
        self.loader.validate(&next, "<update>")?;
        let rules = compile_priority_rules(&next)?;
        let old = self.shared.config();
        // `reload` compiles first and changes nothing on error.
        self.shared
            .resolver
            .reload(convert::routing_rules(&next))
            .map_err(|e| component("routing")(e.to_string()))?;
        *self
            .shared
            .priority_rules
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(next.clone());
        let mut touched = Vec::new();
        for id in old.sources.keys() {
            if !next.sources.contains_key(id) {
                self.remove_stream(id).await;
                touched.push(id.clone());
            }
        }
        for (id, src) in &next.sources {
            match old.sources.get(id) {
                Some(prev) if prev == src => {}
                Some(_) => {
                    self.remove_stream(id).await;
                    self.add_stream(id, src.clone(), src.enabled).await?;
                    touched.push(id.clone());
                }
                None => {
                    self.add_stream(id, src.clone(), src.enabled).await?;
                    touched.push(id.clone());
                }
            }
        }
        Ok(touched)
    }

    /// Stops every stream, drains the queue into Kafka within `timeout`, and dead-letters
    /// whatever could not be sent in time (reason `shutdown`). Cursors commit as records
    /// settle. Safe to call once; later calls do nothing.
    pub async fn shutdown(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let grace = (timeout / 3).min(Duration::from_secs(10));
        {
            let mut streams = self.streams.lock().await;
            for stream in streams.values_mut() {
                stream.halt(grace).await;
            }
        }
        self.shared.shutting_down.store(true, Ordering::Relaxed);
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
            tracing::warn!(error = %e, "producer flush at shutdown");
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
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
